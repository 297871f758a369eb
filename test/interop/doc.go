// Package interop tests Fieldwatch's bureau protocols against peers written
// independently from the standards' text: hj212peer.py (HJ 212-2017, platform
// and data logger) in Python's standard library, sharing no code with
// Fieldwatch. Each test starts Debian's python3 with the peer on a free
// loopback port and stops it afterwards.
//
// The package holds only tests.
package interop
