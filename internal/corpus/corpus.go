// Package corpus finds the shared capture corpus (../shared/pcaps, with its
// MANIFEST.tsv) for tests that read real captures. Tests skip without it,
// except under CI, which must not pass without it.
package corpus

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Dir finds the shared capture corpus: $FLOODGUARD_PCAP_CORPUS, by
// default ../shared/pcaps, relative to the repository root. Without it the
// test skips, except under CI, which must not pass without it.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("FLOODGUARD_PCAP_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "shared", "pcaps")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(moduleRoot(t), dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST.tsv")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pcap corpus missing under CI: %v", err)
		}
		t.Skipf("pcap corpus not found (set FLOODGUARD_PCAP_CORPUS): %v", err)
	}
	return dir
}

// moduleRoot walks up from the package directory to go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

// Row is one MANIFEST.tsv line, with the packets column parsed.
type Row struct {
	Path, Format string
	Packets      int  // whole packets a reader must return
	Broken       bool // "N then error: ...": an error must follow them
	Refused      bool // not a pcap/pcapng file: opening must fail
	Note         string
}

var packetsColumn = regexp.MustCompile(`^(\d+)( then error: .*)?$`)

// refusedFormat reports formats that are not pcap or pcapng, whatever the
// packets column says.
func refusedFormat(format string) bool {
	for _, p := range []string{"zstd", "snoop", "not a capture"} {
		if strings.HasPrefix(format, p) {
			return true
		}
	}
	return false
}

func Manifest(t testing.TB, dir string) []Row {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []Row
	sc := bufio.NewScanner(f)
	for line := 0; sc.Scan(); line++ {
		cols := strings.Split(sc.Text(), "\t")
		if line == 0 {
			if len(cols) < 8 || cols[0] != "path" || cols[6] != "packets" {
				t.Fatalf("MANIFEST.tsv header changed: %q", sc.Text())
			}
			continue
		}
		if len(cols) < 8 {
			t.Fatalf("MANIFEST.tsv line %d: %d columns", line+1, len(cols))
		}
		row := Row{Path: cols[0], Format: cols[4], Note: cols[7]}
		switch m := packetsColumn.FindStringSubmatch(cols[6]); {
		case strings.HasPrefix(cols[6], "n/a"), refusedFormat(cols[4]):
			// tshark reads zstd and snoop files, so their rows carry a
			// count; a pcap/pcapng reader must refuse them (README).
			row.Refused = true
		case m != nil:
			row.Packets, _ = strconv.Atoi(m[1])
			row.Broken = m[2] != ""
		default:
			t.Fatalf("MANIFEST.tsv line %d: packets column %q", line+1, cols[6])
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("MANIFEST.tsv has no rows")
	}
	return rows
}
