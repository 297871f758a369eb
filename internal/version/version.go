// Package version holds the release both binaries report; the Makefile sets
// it with -ldflags "-X github.com/fieldwatch/fieldwatch/internal/version.Version=…".
package version

// Version is the release, or "dev" for a plain go build.
var Version = "dev"
