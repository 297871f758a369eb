package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Build builds the main packages pkgs (paths from the module root, which is
// root relative to the calling test's directory, e.g. "../..") into dir with
// the toolchain running the tests, so the binaries match what is tested.
func Build(root, dir string, pkgs ...string) error {
	return BuildVersion(root, dir, "", pkgs...)
}

// BuildVersion is Build with the binaries reporting version (as the
// Makefile sets it: -X …/internal/version.Version); "" leaves "dev".
func BuildVersion(root, dir, version string, pkgs ...string) error {
	args := []string{"build", "-o", dir + "/"}
	if version != "" {
		args = append(args, "-ldflags", "-X github.com/fieldwatch/fieldwatch/internal/version.Version="+version)
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build %v: %v\n%s", pkgs, err, out)
	}
	return nil
}
