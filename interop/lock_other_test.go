//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package interop

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockFile creates path exclusively and waits for it until ctx ends: a
// best-effort lock for systems without flock. A lock file older than
// npmTimeout plus a minute is taken to be left by a killed process and
// removed.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = fmt.Fprintf(f, "pid %d\n", os.Getpid())
			_ = f.Close()
			return func() { _ = os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > npmTimeout+time.Minute {
			_ = os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another test process to remove %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
