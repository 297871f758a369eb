package hj212

import "io"

func errorsEOF() error { return io.EOF }
