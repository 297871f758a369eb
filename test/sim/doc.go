// Package sim simulates field devices for the demo and the tests: a Modbus
// TCP server (one endpoint, many unit addresses, like a serial device server
// in front of an RS485 bus) whose units answer with the register maps of real
// sensors, filled from a plausible model of a farm's weather and soil.
//
// The register encodings here are written by hand from the vendors' maps,
// independently of drivers/modbus, so a test that compares what the gateway
// decoded with what the simulator served checks the decoder, not itself.
package sim
