package payload_test

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookline/hookline/internal/testenv"
	"github.com/hookline/hookline/payload"
)

// pyIsoformat formats each "seconds microseconds" line as Python's
// datetime.isoformat() of the aware UTC datetime it names.
const pyIsoformat = `
import sys
from datetime import datetime, timedelta, timezone
epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
for line in sys.stdin:
    s, us = line.split()
    print((epoch + timedelta(seconds=int(s), microseconds=int(us))).isoformat())
`

// TestAppendTimeMatchesPython formats random instants across Python's whole
// datetime range with both python3 and AppendTime and compares byte for byte.
func TestAppendTimeMatchesPython(t *testing.T) {
	py := testenv.LookTool(t, "python3")
	seed := testenv.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))

	minSec := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxSec := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	var in strings.Builder
	var instants []time.Time
	for i := range 400 {
		sec := minSec + rng.Int64N(maxSec-minSec+1)
		if i%2 == 0 { // half of them near today, where real timestamps live
			sec = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + rng.Int64N(10*365*86400)
		}
		var us int64
		switch i % 4 {
		case 0: // whole seconds: no fraction at all
		case 1:
			us = rng.Int64N(10) // leading zeros in the fraction
		default:
			us = rng.Int64N(1_000_000)
		}
		ns := us*1000 + rng.Int64N(1000) // sub-microsecond noise is truncated
		zone := time.FixedZone("", (rng.IntN(27)-12)*3600)
		instants = append(instants, time.Unix(sec, ns).In(zone))
		fmt.Fprintf(&in, "%d %d\n", sec, us)
	}

	cmd := exec.Command(py, "-c", pyIsoformat)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	require.NoError(t, err, "python3 failed")
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, want, len(instants))
	for i, ts := range instants {
		require.Equal(t, want[i], payload.FormatTime(ts), "instant %d (%s), seed %d", i, ts.Format(time.RFC3339Nano), seed)
	}
}
