package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunCountsAttemptsAndDeliveries(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, ""))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)

	var attempts, deliveries map[string]int
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(lines[0], "attempts: ")), &attempts))
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "deliveries: ")), &deliveries))
	assert.Equal(t, 9, deliveries["succeeded"], "every delivery ends succeeded")
	assert.Equal(t, 9, attempts["ok"], "one successful attempt each")
	assert.Positive(t, attempts["http_error"], "the 503s were counted")
}
