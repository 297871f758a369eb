package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// A record on disk:
//
//	uint32 payload length | uint32 CRC-32C of payload | payload
//	payload = uvarint first seq | uvarint count | body               readings (rows body, docs/wire.md)
//	        | uvarint first seq | 0 | uvarint count | body           events (events section)
//
// A readings record never has count 0, so the 0 marks an events record;
// buffers written before events existed read unchanged.
const (
	recordHeader = 8
	maxRecord    = 16 << 20
	segSuffix    = ".seg"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeRecord builds a whole record of count items whose body encode
// appends after the header.
func encodeRecord(first uint64, count int, events bool, encode func([]byte) []byte) ([]byte, error) {
	rec := binary.AppendUvarint(make([]byte, recordHeader, recordHeader+32+24*count), first)
	if events {
		rec = binary.AppendUvarint(rec, 0)
	}
	rec = binary.AppendUvarint(rec, uint64(count))
	rec = encode(rec)
	body := rec[recordHeader:]
	if len(body) > maxRecord {
		return nil, fmt.Errorf("record of %d bytes is too large", len(body))
	}
	binary.BigEndian.PutUint32(rec[0:], uint32(len(body)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(body, crcTable))
	return rec, nil
}

// readRecord reads the record at off. With body == nil it only checks it.
// events says whether the record holds events rather than readings.
func readRecord(f *os.File, off int64, hdr *[recordHeader]byte, body *[]byte) (first, count uint64, events bool, n int64, err error) {
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return 0, 0, false, 0, fmt.Errorf("torn record header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[0:])
	sum := binary.BigEndian.Uint32(hdr[4:])
	if size == 0 || size > maxRecord {
		return 0, 0, false, 0, fmt.Errorf("record length %d is impossible", size)
	}
	payload := make([]byte, size)
	if _, err := f.ReadAt(payload, off+recordHeader); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, 0, false, 0, fmt.Errorf("torn record: %w", err)
		}
		return 0, 0, false, 0, err
	}
	if crc32.Checksum(payload, crcTable) != sum {
		return 0, 0, false, 0, errors.New("record checksum mismatch")
	}
	first, k := binary.Uvarint(payload)
	if k <= 0 || first == 0 {
		return 0, 0, false, 0, errors.New("record has no sequence")
	}
	p := payload[k:]
	count, k2 := binary.Uvarint(p)
	if k2 <= 0 || count > maxRecord {
		return 0, 0, false, 0, errors.New("record has no count")
	}
	p = p[k2:]
	if count == 0 { // an events record: 0, then the real count
		events = true
		if count, k2 = binary.Uvarint(p); k2 <= 0 || count == 0 || count > maxRecord {
			return 0, 0, false, 0, errors.New("events record has no count")
		}
		p = p[k2:]
	}
	if body != nil {
		*body = p
	}
	return first, count, events, recordHeader + int64(size), nil
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }
