package hj212

// CRC16 is the check of HJ 212-2017 appendix A over the data segment (the
// bytes counted by the length field, from "QN=" up to the closing "&&").
//
// It is not the Modbus CRC although it uses the same register, start value
// and polynomial: the appendix's reference code replaces the register by its
// high byte XOR the next input byte (crc = crc>>8 ^ b) before the eight shift
// steps, where Modbus XORs the byte into the low byte. The result is written
// as 4 hex digits, high byte first.
func CRC16(data []byte) uint16 {
	reg := uint16(0xFFFF)
	for _, b := range data {
		reg = reg>>8 ^ uint16(b)
		for range 8 {
			carry := reg & 1
			reg >>= 1
			if carry != 0 {
				reg ^= 0xA001
			}
		}
	}
	return reg
}
