package paging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFileMode: a secret file others can read is refused, like ssh
// refuses such a key, with an error naming the sink, the key, the file
// and its mode, never the secret.
func TestSecretFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o640, 0o644, 0o604, 0o660} {
		path := filepath.Join(dir, "key-"+octal(mode))
		if err := os.WriteFile(path, []byte(testRoutingKey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := NewSink(SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: path}})
		if err == nil {
			t.Errorf("secret file with mode %04o accepted", mode)
			continue
		}
		for _, w := range []string{`"pd"`, "routing_key", path, "mode 0" + octal(mode)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("mode %04o: error %q does not name %q", mode, err, w)
			}
		}
		checkNoSecret(t, "secret mode error", err.Error())
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := filepath.Join(dir, "ok-"+octal(mode))
		if err := os.WriteFile(path, []byte(testRoutingKey+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if _, err := NewSink(SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: path}}); err != nil {
			t.Errorf("secret file with mode %04o: %v", mode, err)
		}
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}
