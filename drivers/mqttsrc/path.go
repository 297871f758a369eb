package mqttsrc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Limits on paths.
const (
	maxPathLen   = 256
	maxSegments  = 32
	maxIndex     = 1 << 20
	maxTopicSpec = 1 << 10 // highest topic level a spec may name
)

// segment is one step of a path: an object key, which is also an array
// index when it is a decimal number.
type segment struct {
	key   string
	index int // -1 when key is not an index
}

// path is a parsed JSON path; nil is the whole payload.
type path []segment

// parsePath parses a dotted path; "." is the whole payload.
func parsePath(s string) (path, error) {
	if s == "." {
		return nil, nil
	}
	if s == "" {
		return nil, errors.New("path is empty")
	}
	if len(s) > maxPathLen {
		return nil, fmt.Errorf("path is longer than %d bytes", maxPathLen)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("path %q is not valid UTF-8", s)
	}
	parts := strings.Split(s, ".")
	if len(parts) > maxSegments {
		return nil, fmt.Errorf("path %q has more than %d segments", s, maxSegments)
	}
	p := make(path, len(parts))
	for i, k := range parts {
		if k == "" {
			return nil, fmt.Errorf("path %q has an empty segment (write a.b.0, not a..b or .a)", s)
		}
		p[i] = segment{key: k, index: parseIndex(k)}
	}
	return p, nil
}

// parseIndex returns k as an array index, or -1 if it is not one.
func parseIndex(k string) int {
	if k == "" || len(k) > 7 || (len(k) > 1 && k[0] == '0') {
		return -1
	}
	n := 0
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return -1
		}
		n = n*10 + int(k[i]-'0')
	}
	if n > maxIndex {
		return -1
	}
	return n
}

// source is where a value comes from: a JSON path or a topic level.
type source struct {
	path  path
	level int // topic level when ≥ 0; then path is unused
}

// parseSource parses a JSON path or "topic:N".
func parseSource(s string) (source, error) {
	if n, ok := strings.CutPrefix(s, "topic:"); ok {
		l, err := strconv.Atoi(n)
		if err != nil || l < 0 || l > maxTopicSpec {
			return source{}, fmt.Errorf("%q is not topic:N with N a topic level from 0", s)
		}
		return source{level: l}, nil
	}
	p, err := parsePath(s)
	if err != nil {
		return source{}, err
	}
	return source{path: p, level: -1}, nil
}

// deviceSpec is where the device id comes from.
type deviceSpec struct {
	source
	constant string // when not empty, the id itself
}

// parseDevice parses a source or "const:ID".
func parseDevice(s string) (deviceSpec, error) {
	if id, ok := strings.CutPrefix(s, "const:"); ok {
		if err := telemetry.CheckName("device", id); err != nil {
			return deviceSpec{}, err
		}
		return deviceSpec{constant: id}, nil
	}
	src, err := parseSource(s)
	return deviceSpec{source: src}, err
}

// topicLevel returns the n-th (0-based) "/"-separated level of topic.
func topicLevel(topic string, n int) (string, bool) {
	for ; n > 0; n-- {
		i := strings.IndexByte(topic, '/')
		if i < 0 {
			return "", false
		}
		topic = topic[i+1:]
	}
	if i := strings.IndexByte(topic, '/'); i >= 0 {
		topic = topic[:i]
	}
	return topic, true
}
