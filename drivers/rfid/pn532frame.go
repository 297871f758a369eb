package rfid

// PN532 frames (UM0701-02 §6.2.1):
//
//	normal   00 00 FF LEN LCS TFI PD0…PDn DCS 00   LEN = bytes of TFI…PDn ≤ 255
//	extended 00 00 FF FF FF LENM LENL LCS TFI … DCS 00
//	ACK      00 00 FF 00 FF 00
//	NACK     00 00 FF FF 00 00
//	error    00 00 FF 01 FF 7F 81 00
//
// LEN + LCS ≡ 0 and TFI + PD0 + … + PDn + DCS ≡ 0 (mod 256). TFI is D4
// from host to PN532 and D5 back; a response's PD0 is the command + 1.

const (
	tfiHost   = 0xD4
	tfiPN532  = 0xD5
	maxPNBody = 265 // TFI and data of an extended frame
)

// pnEvent is what one byte completed in the frame decoder.
type pnEvent uint8

const (
	pnNone     pnEvent = iota
	pnInfo             // an information frame; its body is framer.body[:framer.ln]
	pnACK              //
	pnNACK             //
	pnError            // the application-level error frame
	pnGarbage          // the first byte of a run outside frames
	pnLCS              // a length checksum mismatch
	pnDCS              // a data checksum mismatch
	pnFormat           // a zero-length information frame
	pnOverlong         // an extended frame longer than maxPNBody
)

// stat is the Stat kind of a refusal event.
func (e pnEvent) stat() string {
	switch e {
	case pnGarbage:
		return StatGarbage
	case pnLCS:
		return StatLCS
	case pnDCS:
		return StatDCS
	case pnFormat:
		return StatFormat
	case pnOverlong:
		return StatOverlong
	}
	return ""
}

// Frame decoder states.
const (
	pnIdle   = iota // looking for 00
	pnZero          // after 00, looking for FF
	pnLen           // expecting LEN
	pnLenCS         // expecting LCS
	pnExtM          // expecting LENM
	pnExtL          // expecting LENL
	pnExtCS         // expecting the extended LCS
	pnBody          // collecting TFI and data
	pnDataCS        // expecting DCS
)

// pnFramer decodes PN532 frames byte by byte. Zeros between frames
// (preamble, postamble) are skipped silently, anything else is garbage;
// after a checksum error it resynchronises on the next 00 FF.
type pnFramer struct {
	st      int
	ln      int
	n       int
	ext     [2]byte
	body    [maxPNBody]byte
	garbage bool
}

// reset drops a partial frame, reporting whether there was one.
func (f *pnFramer) reset() bool {
	partial := f.st > pnZero
	f.st, f.garbage = pnIdle, false
	return partial
}

// step consumes b.
func (f *pnFramer) step(b byte) pnEvent {
	switch f.st {
	case pnIdle, pnZero:
		switch {
		case b == 0x00:
			f.st = pnZero
		case b == 0xFF && f.st == pnZero:
			f.st, f.garbage = pnLen, false
		default:
			f.st = pnIdle
			if !f.garbage {
				f.garbage = true
				return pnGarbage
			}
		}
	case pnLen:
		f.ln, f.st = int(b), pnLenCS
	case pnLenCS:
		return f.lenCS(b)
	case pnExtM:
		f.ext[0], f.st = b, pnExtL
	case pnExtL:
		f.ext[1], f.st = b, pnExtCS
	case pnExtCS:
		f.st = pnIdle
		f.ln = int(f.ext[0])<<8 | int(f.ext[1])
		switch {
		case f.ext[0]+f.ext[1]+b != 0:
			return pnLCS
		case f.ln == 0:
			return pnFormat
		case f.ln > maxPNBody:
			return pnOverlong
		}
		f.st, f.n = pnBody, 0
	case pnBody:
		f.body[f.n] = b
		f.n++
		if f.n == f.ln {
			f.st = pnDataCS
		}
	case pnDataCS:
		f.st = pnIdle
		sum := b
		for _, c := range f.body[:f.ln] {
			sum += c
		}
		switch {
		case sum != 0:
			return pnDCS
		case f.ln == 1 && f.body[0] == 0x7F:
			return pnError
		}
		return pnInfo
	}
	return pnNone
}

// lenCS handles the byte after LEN: ACK, NACK, the extended-frame marker
// or the LCS of a normal frame.
func (f *pnFramer) lenCS(b byte) pnEvent {
	f.st = pnIdle
	switch {
	case f.ln == 0x00 && b == 0xFF:
		return pnACK
	case f.ln == 0xFF && b == 0x00:
		return pnNACK
	case f.ln == 0xFF && b == 0xFF:
		f.st = pnExtM
		return pnNone
	case byte(f.ln)+b != 0:
		if b == 0x00 { // may be the preamble of the next frame
			f.st = pnZero
		}
		return pnLCS
	case f.ln == 0:
		f.st = pnZero // LEN 00 LCS 00: b is a zero
		return pnFormat
	}
	f.st, f.n = pnBody, 0
	return pnNone
}

// appendFrame appends the frame carrying body (TFI and data) to dst,
// extended when body is longer than 255 bytes. body must not exceed
// maxPNBody.
func appendFrame(dst, body []byte) []byte {
	dst = append(dst, 0x00, 0x00, 0xFF)
	if n := len(body); n <= 0xFF {
		dst = append(dst, byte(n), -byte(n))
	} else {
		m, l := byte(n>>8), byte(n)
		dst = append(dst, 0xFF, 0xFF, m, l, -(m + l))
	}
	var sum byte
	for _, c := range body {
		sum += c
	}
	dst = append(dst, body...)
	return append(dst, -sum, 0x00)
}

// Fixed frames.
const (
	pnFrameACK  = "\x00\x00\xFF\x00\xFF\x00"
	pnFrameNACK = "\x00\x00\xFF\xFF\x00\x00"
	// pnWakeUp takes an HSU PN532 out of power-down: 55 55 and 14 zeros.
	pnWakeUp = "\x55\x55\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
)
