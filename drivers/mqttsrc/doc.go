// Package mqttsrc is the source for sensors that already publish over MQTT:
// LoRaWAN network servers (ChirpStack v4, whose MQTT integration publishes
// one JSON event per uplink on application/{application_id}/device/{dev_eui}/event/up)
// and Wi-Fi nodes that publish JSON of their own.
//
// A Mapping, part of a device profile, says declaratively how one JSON
// payload becomes readings: where the device id comes from (a JSON path, a
// topic level or a constant), where the acquisition time is, which values
// are metrics (with scale, offset and valid range) and which payloads to
// keep at all. A Mapper applies a Mapping to one message; it never panics,
// and counts what it refuses by kind. A Source subscribes to a broker with
// paho, maps each message and hands the readings to a sink, one message at
// a time, so that a slow sink slows the broker down rather than queueing
// without bound.
//
// No paho type appears in this package's API.
package mqttsrc
