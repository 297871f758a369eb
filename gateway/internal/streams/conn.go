package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

// readTimeout is how long a Read waits before returning 0, nil so the runner
// can tick.
const readTimeout = time.Second

// Serial opens the serial port path with mode.
func Serial(path string, mode serialport.Mode) func(context.Context) (Conn, error) {
	return func(context.Context) (Conn, error) {
		p, err := serialport.Open(path, mode)
		if err != nil {
			return nil, err
		}
		if err := p.SetReadTimeout(readTimeout); err != nil {
			p.Close()
			return nil, err
		}
		return p, nil
	}
}

// TCP connects to addr (an NMEA multiplexer, a serial device server).
func TCP(addr string) func(context.Context) (Conn, error) {
	return func(ctx context.Context) (Conn, error) {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &tcpConn{c}, nil
	}
}

type tcpConn struct{ net.Conn }

// Read returns 0, nil after readTimeout without data.
func (c *tcpConn) Read(p []byte) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	n, err := c.Conn.Read(p)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return n, nil
	}
	return n, err
}

// MaxDocument bounds a fetched document (an NDBC realtime2 file is about
// 400 KB for 45 days).
const MaxDocument = 8 << 20

// File reads a local file each time (a feed mirrored to disk).
func File(path string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f)
	}
}

// HTTP fetches url each time.
func HTTP(url string) func(context.Context) ([]byte, error) {
	client := &http.Client{Timeout: time.Minute}
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", "fieldwatch-gateway")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", url, resp.Status)
		}
		return readLimited(resp.Body)
	}
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxDocument {
		return nil, fmt.Errorf("document is larger than %d bytes", MaxDocument)
	}
	return b, nil
}
