// Command bufferfill appends readings to a gateway buffer directory as the
// gateway's pollers would have while its uplink was down, so that the real
// gateway binary, started on that directory, has a backlog to send. It is
// a tool for test/bench (Go's internal rule keeps the buffer package out of
// test/), not part of the product.
//
// Each line of standard input is one append, one device poll: a JSON array
// of telemetry.Reading. At the end it prints how many readings it appended
// and the buffer's size.
//
//	bufferfill -dir /tmp/buffer < polls.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

func main() {
	dir := flag.String("dir", "", "the buffer directory (created if missing)")
	fsync := flag.String("fsync", buffer.FsyncOff, "the buffer's fsync policy while filling (always, interval, off)")
	flag.Parse()
	if err := fill(*dir, *fsync); err != nil {
		fmt.Fprintln(os.Stderr, "bufferfill:", err)
		os.Exit(1)
	}
}

func fill(dir, fsync string) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	buf, err := buffer.Open(buffer.Options{Dir: dir, Fsync: fsync})
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var poll []telemetry.Reading
	n := 0
	for sc.Scan() {
		poll = poll[:0]
		if err := json.Unmarshal(sc.Bytes(), &poll); err != nil {
			buf.Close()
			return fmt.Errorf("line %d: %w", n+1, err)
		}
		if _, err := buf.Append(poll); err != nil {
			buf.Close()
			return err
		}
		n += len(poll)
	}
	if err := sc.Err(); err != nil {
		buf.Close()
		return err
	}
	st := buf.Stats()
	if err := buf.Close(); err != nil {
		return err
	}
	fmt.Printf("appended %d readings; buffer holds %d in %d bytes, %d segments\n", n, st.Readings, st.Bytes, st.Segments)
	return nil
}
