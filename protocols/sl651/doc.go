// Package sl651 is the wire codec of SL 651-2014 (水文监测数据通信规约), the
// protocol in which a hydrological telemetry station (遥测站: rain gauges,
// water levels, flow) reports to a water bureau's central station (中心站).
//
// A Frame is one message in either of the standard's encodings: HEX/BCD
// (start 7E7E, binary header, BCD data) or ASCII (start SOH, the same
// header written as hex digits, elements as "CODE value " text). Decode and
// Frame.Encode check and write the frame: header fields, the up/down flag
// and body length, STX or SYN with the packet count and number, the end
// character, and the CRC16 (polynomial X16+X15+X2+1, register starting at
// FFFF, reflected, the same as Modbus; written high byte first). Reader
// cuts frames out of a TCP byte stream and resynchronises after garbage.
//
// ParseReport reads the body of the up-link reports (link keep-alive 2F,
// test 30, uniform interval 31, timed 32, added 33, hourly 34, and the
// answers to queries 37, 38, 3A): serial number, send time, station address
// and classification code, observation times, and the elements of
// appendix C with their N(x,y) definitions (Elements). Values gives them as
// numbers with their station and time.
//
// Every refusal is an *Error whose Kind is one of the Kind… constants and
// which wraps one of the Err… sentinels.
//
// The facts this package relies on, with their sources and what could not be
// verified, are in docs/standards/sl651.md.
package sl651
