package task_test

import (
	"flag"
	"os"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

// defaultRapidChecks is how many random runs each property test makes
// when neither -rapid.checks nor RAPID_CHECKS sets the number. It keeps
// go test -race of this package to well under a minute on two cores; ask
// for more with -rapid.checks=100000.
const defaultRapidChecks = 3000

// TestMain fails the test binary if any goroutine outlives the tests.
// Tests that run in testing/synctest bubbles need nothing more: a bubble
// does not return until every goroutine started in it has exited, so the
// check here sees none of them.
func TestMain(m *testing.M) {
	flag.Parse()
	setDefaultRapidChecks(defaultRapidChecks)
	goleak.VerifyTestMain(m)
}

// setDefaultRapidChecks sets -rapid.checks to n unless the command line or
// the environment already chose a number.
func setDefaultRapidChecks(n int) {
	if _, ok := os.LookupEnv("RAPID_CHECKS"); ok {
		return
	}
	chosen := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "rapid.checks" {
			chosen = true
		}
	})
	if !chosen {
		if err := flag.Set("rapid.checks", strconv.Itoa(n)); err != nil {
			panic("set -rapid.checks: " + err.Error())
		}
	}
}
