package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/fieldwatch/fieldwatch/internal/version"
)

func versionCmd(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "fieldwatch-gateway %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}
