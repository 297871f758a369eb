// Package libmodbus builds and starts a Modbus server written with
// libmodbus, an implementation independent of ours, so tests can check our
// client against it (see testdata/server.c). `make deps` installs libmodbus-dev.
package libmodbus
