package delivery

import (
	"net/url"
	"strings"
	"testing"
)

// TestHostKeyMatchesURLParse checks the string-slicing hostKey against
// net/url on the shapes of URL that ValidateURL lets through. (Percent
// escapes in the host, as in an IPv6 zone, stay as written: the key only has
// to group one host's attempts.)
func TestHostKeyMatchesURLParse(t *testing.T) {
	for _, raw := range []string{
		"https://Example.COM/hooks",
		"http://127.0.0.1:8080",
		"http://127.0.0.1:8080?x=1",
		"https://hooks.example.com:443/a/b?c=d#e",
		"https://user:p%40ss@example.com:8443/x",
		"http://[::1]:9000/hook",
		"https://example.com#frag",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hostKey(raw), strings.ToLower(u.Host); got != want {
			t.Errorf("hostKey(%q) = %q, want %q", raw, got, want)
		}
	}
}
