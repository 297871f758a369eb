// Command brokenrelease is a gateway release that is broken: it exits with
// status 1 at start, whatever it is asked. test/e2e TestBinaryUpdateJourney
// publishes it as a release to prove that the running gateway rolls it
// back by itself. It is not part of any product.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "brokenrelease: a broken gateway release; exiting at start")
	os.Exit(1)
}
