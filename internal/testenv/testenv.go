// Package testenv holds helpers shared by hookline's tests: finding external
// tools (python3, node, npm) and the rule that a missing tool skips a test on
// a developer's machine but fails it in CI.
package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where a missing tool or
// service is a failure, not a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips t with msg, or fails it when running in CI.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI=true: a missing prerequisite fails the run)", msg)
	}
	t.Skip(msg)
}

// LookTool returns the path of the named executable, skipping t (or failing it
// in CI) when it is not installed.
func LookTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, name+" not found on PATH; install it to run this cross-check")
	}
	return p
}

// Seed returns the seed for a test's random choices: HOOKLINE_TEST_SEED when
// set (a number, or "random" for one drawn from the clock), else a fixed
// default, so runs are reproducible. It logs the seed so a failure can be
// replayed with HOOKLINE_TEST_SEED=<seed>.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(20260506)
	switch s := os.Getenv("HOOKLINE_TEST_SEED"); s {
	case "":
	case "random":
		seed = uint64(time.Now().UnixNano())
	default:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HOOKLINE_TEST_SEED=%q: want an unsigned integer or \"random\"", s)
		}
		seed = n
	}
	t.Logf("seed %d (replay with HOOKLINE_TEST_SEED=%d)", seed, seed)
	return seed
}
