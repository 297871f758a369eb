package mqttsrc

import (
	"encoding/json"
	"unicode/utf8"
)

// The scanner below finds the values at a set of paths in a JSON document
// in one pass, without decoding the rest: the paths form a trie, and the
// walk descends only into the members and elements some path names,
// skipping every other value by counting brackets. Recursion follows the
// trie, so its depth is bounded by the longest path (maxSegments), not by
// the document. The document must have passed json.Valid; on anything else
// the walk still stays within bounds. As with encoding/json and JavaScript,
// the last of duplicate keys wins.

// trie holds the paths a Mapper reads. Each path has a slot, its index in
// the spans that extract fills.
type trie struct {
	root  node
	slots int
}

type node struct {
	seg      segment
	children []*node
	here     []int // slots of the paths ending at this node
	under    []int // slots of the paths ending at or below it
}

// span is where a value lies in the document; start == end when absent.
type span struct{ start, end int }

// add adds p and returns its slot.
func (t *trie) add(p path) int {
	slot := t.slots
	t.slots++
	n := &t.root
	n.under = append(n.under, slot)
	for _, seg := range p {
		var next *node
		for _, c := range n.children {
			if c.seg.key == seg.key {
				next = c
				break
			}
		}
		if next == nil {
			next = &node{seg: seg}
			n.children = append(n.children, next)
		}
		next.under = append(next.under, slot)
		n = next
	}
	n.here = append(n.here, slot)
	return slot
}

// extract sets spans[slot] to the value of each path in doc, or to the
// zero span when it is absent. len(spans) must be t.slots.
func (t *trie) extract(doc []byte, spans []span) {
	clear(spans)
	s := skipSpace(doc, 0)
	t.root.visit(doc, s, valueEnd(doc, s), spans)
}

// value returns the raw JSON at sp, or nil.
func (sp span) value(doc []byte) []byte {
	if sp.start >= sp.end || sp.end > len(doc) {
		return nil
	}
	return doc[sp.start:sp.end]
}

// visit records the value doc[s:e] for the paths ending at n and descends
// into it for those going further.
func (n *node) visit(doc []byte, s, e int, spans []span) {
	for _, slot := range n.here {
		spans[slot] = span{s, e}
	}
	if len(n.children) == 0 || s >= len(doc) {
		return
	}
	switch doc[s] {
	case '{':
		n.members(doc, s, spans)
	case '[':
		n.elements(doc, s, spans)
	}
}

// members walks the object starting at doc[i].
func (n *node) members(doc []byte, i int, spans []span) {
	i = skipSpace(doc, i+1)
	for i < len(doc) && doc[i] == '"' {
		ke := stringEnd(doc, i)
		if ke >= len(doc) {
			return
		}
		key := doc[i+1 : ke-1]
		var decoded string
		plain := isPlain(key)
		if !plain {
			decoded, _ = unquote(doc[i:ke])
		}
		i = skipSpace(doc, ke)
		if i >= len(doc) || doc[i] != ':' {
			return
		}
		vs := skipSpace(doc, i+1)
		ve := valueEnd(doc, vs)
		for _, c := range n.children {
			if plain && string(key) == c.seg.key || !plain && decoded == c.seg.key {
				for _, slot := range c.under { // an earlier duplicate key no longer counts
					spans[slot] = span{}
				}
				c.visit(doc, vs, ve, spans)
			}
		}
		i = skipSpace(doc, ve)
		if i >= len(doc) || doc[i] != ',' {
			return
		}
		i = skipSpace(doc, i+1)
	}
}

// elements walks the array starting at doc[i].
func (n *node) elements(doc []byte, i int, spans []span) {
	last := -1
	for _, c := range n.children {
		last = max(last, c.seg.index)
	}
	i = skipSpace(doc, i+1)
	if i >= len(doc) || doc[i] == ']' {
		return
	}
	for k := 0; k <= last && i < len(doc); k++ {
		ve := valueEnd(doc, i)
		for _, c := range n.children {
			if c.seg.index == k {
				c.visit(doc, i, ve, spans)
			}
		}
		i = skipSpace(doc, ve)
		if i >= len(doc) || doc[i] != ',' {
			return
		}
		i = skipSpace(doc, i+1)
	}
}

// isPlain reports whether the raw key needs no decoding: no escape and
// only ASCII (encoding/json turns invalid UTF-8 into U+FFFD).
func isPlain(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// unquote decodes the quoted JSON string q.
func unquote(q []byte) (string, bool) {
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", false
	}
	return s, true
}

// skipSpace returns the index of the first non-space byte from i.
func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the index just past the value starting at doc[i].
func valueEnd(doc []byte, i int) int {
	if i >= len(doc) {
		return len(doc)
	}
	switch doc[i] {
	case '"':
		return stringEnd(doc, i)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				i = stringEnd(doc, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(doc)
	}
	for i < len(doc) { // number, true, false, null
		switch doc[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// stringEnd returns the index just past the string whose opening quote is
// at doc[i].
func stringEnd(doc []byte, i int) int {
	for i++; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(doc)
}
