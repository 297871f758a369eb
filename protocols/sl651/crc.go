package sl651

// CRC16 is the check of SL 651-2014 (tables 11, 16, 20): generator
// polynomial X16+X15+X2+1 (8005, reflected A001), register starting at FFFF,
// no final XOR — the Modbus CRC — over every byte before the check, from the
// start character (7E7E or SOH) through the end character. The standard
// gives only the polynomial; the start value and reflection are those that
// reproduce every worked example found (docs/standards/sl651.md). It is sent
// high byte first (HEX: 2 bytes; ASCII: 4 hex digits), unlike Modbus.
func CRC16(data []byte) uint16 {
	reg := uint16(0xFFFF)
	for _, b := range data {
		reg ^= uint16(b)
		for range 8 {
			if reg&1 != 0 {
				reg = reg>>1 ^ 0xA001
			} else {
				reg >>= 1
			}
		}
	}
	return reg
}
