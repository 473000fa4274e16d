package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
)

const (
	// npmTimeout bounds one npm ci run. A run that needs the network and
	// gets no answer ends here and counts as an unreachable registry.
	npmTimeout = 3 * time.Minute

	// lockFileName is the file flock'ed in the package directory while one
	// test process checks and installs node_modules.
	lockFileName = ".npm-ci.lock"

	// stampFileName, inside node_modules, holds the digest of package.json
	// and package-lock.json that node_modules was installed from. npm ci
	// deletes node_modules first, so a failed run leaves no stamp.
	stampFileName = ".hookline-npm-ci-stamp"
)

// npmFlags make npm ci quiet, offline-friendly (the local cache is used
// without asking the registry whether it is fresh) and free of install
// scripts, which the pinned packages do not need.
var npmFlags = []string{"ci", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", "--no-update-notifier"}

// install remembers, for this test process, whether node_modules is ready
// or why it cannot be, so only the first test that needs it runs npm.
var install struct {
	sync.Mutex
	ready   bool
	skipMsg string // set when the registry was unreachable
}

// requireNodeModules makes sure interop/node_modules holds exactly what
// package-lock.json pins, running npm ci when it is missing or stale. Two
// test processes (go test run twice at once, -race and not) take turns
// through a file lock. An unreachable registry skips t, or fails it under
// CI=true; any other npm failure fails t.
func requireNodeModules(t *testing.T) {
	t.Helper()
	install.Lock()
	defer install.Unlock()
	if install.ready {
		return
	}
	if install.skipMsg != "" {
		testenv.SkipOrFail(t, install.skipMsg)
	}
	dir := packageDir(t)
	want := manifestDigest(t, dir)
	if stampMatches(dir, want) {
		install.ready = true
		return
	}
	npm := testenv.LookTool(t, "npm")

	ctx, cancel := context.WithTimeout(t.Context(), npmTimeout+30*time.Second)
	defer cancel()
	unlock, err := lockFile(ctx, filepath.Join(dir, lockFileName))
	if err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("cannot lock %s to install node_modules: %v", dir, err))
	}
	defer unlock()
	if stampMatches(dir, want) { // another process installed it meanwhile
		install.ready = true
		return
	}

	start := time.Now()
	err = npmCI(t.Context(), npm, dir, nil)
	var ne *npmError
	switch {
	case errors.As(err, &ne) && ne.Unreachable:
		install.skipMsg = fmt.Sprintf("npm ci in %s could not reach the registry (%s); the interop tests need the pinned npm packages once, then run offline from the npm cache; npm said:\n%s",
			dir, ne.Reason, firstLines(ne.Output, 6))
		testenv.SkipOrFail(t, install.skipMsg)
	case err != nil:
		t.Fatalf("npm ci in %s: %v", dir, err)
	}
	stamp := filepath.Join(dir, "node_modules", stampFileName)
	require.NoError(t, os.WriteFile(stamp, []byte(want+"\n"), 0o644), "write the install stamp")
	t.Logf("npm ci installed %s/node_modules in %s", dir, time.Since(start).Round(time.Millisecond))
	install.ready = true
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitAfterN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...\n")
	}
	return strings.Join(lines, "")
}

// packageDir is the absolute path of this package's directory, where go
// test runs the tests.
func packageDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	return dir
}

// manifestDigest returns the hex SHA-256 of package.json and
// package-lock.json, which is what node_modules must have been installed
// from.
func manifestDigest(t testing.TB, dir string) string {
	t.Helper()
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "the interop tests install npm packages from %s", name)
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stampMatches reports whether node_modules was installed from the
// manifests with the given digest.
func stampMatches(dir, digest string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", stampFileName))
	return err == nil && strings.TrimSpace(string(b)) == digest
}

// npmError is a failed npm ci run.
type npmError struct {
	// Unreachable is true when npm could not reach the registry: a network
	// error code, a gateway error or the timeout.
	Unreachable bool
	// Reason is the npm error code, or what went wrong.
	Reason string
	// Output is what npm printed.
	Output string
	Err    error
}

func (e *npmError) Error() string {
	return fmt.Sprintf("npm ci failed (%s): %v\n%s", e.Reason, e.Err, e.Output)
}

func (e *npmError) Unwrap() error { return e.Err }

// npmErrorCode finds the code npm prints as "npm error code X" (npm 10 and
// later) or "npm ERR! code X" (earlier).
var npmErrorCode = regexp.MustCompile(`(?m)^npm (?:error|ERR!) code (\S+)`)

// unreachableCodes are the npm error codes that mean the registry (or the
// proxy in front of it) could not be reached, as opposed to a broken
// lockfile, an integrity mismatch or a certificate problem.
var unreachableCodes = map[string]bool{
	"ENOTFOUND": true, "EAI_AGAIN": true, "ECONNREFUSED": true, "ECONNRESET": true,
	"ETIMEDOUT": true, "ESOCKETTIMEDOUT": true, "ERR_SOCKET_TIMEOUT": true,
	"ENETUNREACH": true, "EHOSTUNREACH": true, "ENETDOWN": true, "EPIPE": true,
	"E502": true, "E503": true, "E504": true,
	"ENOTCACHED": true, // --offline, or a cache miss with the network off
}

// npmCI runs npm ci in dir with the extra environment variables, and
// returns an *npmError when it fails.
func npmCI(ctx context.Context, npm, dir string, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, npmFlags...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	ne := &npmError{Output: out.String(), Err: err}
	if ctx.Err() != nil {
		ne.Unreachable = true
		ne.Reason = fmt.Sprintf("no answer within %s", npmTimeout)
		return ne
	}
	ne.Reason = "no npm error code"
	if m := npmErrorCode.FindStringSubmatch(ne.Output); m != nil {
		ne.Reason = m[1]
		ne.Unreachable = unreachableCodes[m[1]]
	}
	return ne
}

// TestNpmCIUnreachableRegistry checks the rule the other tests rely on: npm
// ci against a registry nobody answers for, with an empty cache, is
// classified as unreachable (a skip, or a failure in CI), not as a broken
// install.
func TestNpmCIUnreachableRegistry(t *testing.T) {
	t.Parallel()
	npm := testenv.LookTool(t, "npm")
	src := packageDir(t)
	dir := t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	// A port that was just free: connecting to it is refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	err = npmCI(t.Context(), npm, dir, []string{
		"npm_config_registry=http://" + addr + "/",
		"npm_config_cache=" + filepath.Join(dir, "cache"),
		"npm_config_fetch_retries=0",
		"npm_config_offline=false",
	})
	var ne *npmError
	require.ErrorAs(t, err, &ne, "npm ci against %s must fail", addr)
	require.True(t, ne.Unreachable, "a refused connection must count as an unreachable registry, got reason %q:\n%s", ne.Reason, ne.Output)
}

// pinnedVersion returns the exact version package.json pins for pkg, and
// checks that package-lock.json agrees.
func pinnedVersion(t testing.TB, pkg string) string {
	t.Helper()
	dir := packageDir(t)
	var manifest struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &manifest))
	v := manifest.Dependencies[pkg]
	require.Regexp(t, `^\d+\.\d+\.\d+$`, v, "package.json must pin %s to an exact version", pkg)

	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "package-lock.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &lock))
	require.Equal(t, v, lock.Packages["node_modules/"+pkg].Version, "package-lock.json must lock %s at the version package.json pins; run npm install in interop/", pkg)
	return v
}
