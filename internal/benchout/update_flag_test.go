package benchout

// go test ./... -update rewrites the golden files; every package's tests
// must accept the flag (see internal/golden).
import _ "github.com/floodguard/floodguard/internal/golden"
