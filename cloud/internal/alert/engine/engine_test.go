package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
)

// TestSemantics runs the test cases of testdata/*.yaml: the engine's
// semantics written as rules.
func TestSemantics(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := rules.Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			for _, tc := range r.Tests {
				t.Run(r.ID+"/"+tc.Name, func(t *testing.T) {
					if err := RunCase(r, tc); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}
}
