package sim

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"
)

// ServeRTUOverTCP serves bus as a serial device server (a DTU) does: RTU
// frames, CRC included, carried over TCP connections, until ctx is done.
func ServeRTUOverTCP(ctx context.Context, bus *Bus, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			go func() { <-ctx.Done(); c.Close() }()
			serveRTUConn(bus, c)
		}()
	}
}

func serveRTUConn(bus *Bus, c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		head := make([]byte, 2, 7) // address and function, then FC15/16's byte count
		if _, err := io.ReadFull(r, head); err != nil {
			return
		}
		n := requestLen(head)
		if n == 0 {
			head = head[:7]
			if _, err := io.ReadFull(r, head[2:]); err != nil {
				return
			}
			n = requestLen(head)
		}
		if n < len(head) {
			continue // not a request we know: resynchronise on the next bytes
		}
		frame := append(head, make([]byte, n-len(head))...)
		if _, err := io.ReadFull(r, frame[len(head):]); err != nil {
			return
		}
		if binary.LittleEndian.Uint16(frame[n-2:]) != crc16(frame[:n-2]) {
			continue
		}
		for _, late := range bus.takeHeld() {
			if _, err := c.Write(late); err != nil {
				return
			}
		}
		rep, ok := bus.handle(frame[0], frame[1:n-2], 0)
		if !ok {
			continue
		}
		time.Sleep(rep.delay)
		if _, err := c.Write(encodeRTU(frame[0], rep)); err != nil {
			return
		}
	}
}
