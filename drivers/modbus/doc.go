// Package modbus reads field devices over Modbus: it describes a device's
// registers (Field), covers them with the fewest requests (Plan), decodes
// register words into values with a quality (Field.Decode), and talks to a
// bus (Client).
//
// Frames are built and checked by github.com/grid-x/modbus, the maintained
// fork of goburrow/modbus (see docs/decisions.md); no grid-x type appears in
// this package's API.
package modbus
