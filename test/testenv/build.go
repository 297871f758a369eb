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
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build %v: %v\n%s", pkgs, err, out)
	}
	return nil
}
