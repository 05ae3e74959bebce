package capture

import (
	"errors"
	"fmt"
	"strconv"
)

var (
	// ErrNotCapture means the input is neither pcap nor pcapng (nor a gzip
	// of one), judged by its magic bytes.
	ErrNotCapture = errors.New("not a pcap or pcapng file")
	// ErrZstd means the input is zstd-compressed. floodguard reads gzip
	// itself but has no zstd decoder; the user must decompress first.
	ErrZstd = errors.New("zstd-compressed capture not supported")
	// ErrCorrupt means the file structure is damaged in a way other than
	// plain truncation: an impossible record or block length, a bad
	// byte-order magic, an unknown version, an option that does not fit.
	// Truncation is reported as io.ErrUnexpectedEOF.
	ErrCorrupt = errors.New("corrupt capture")
)

// ReadError is a failure while reading a capture file. It names the file and
// the byte offset of the record or block that could not be read, so the user
// can look at it with a hex dump. Err is io.ErrUnexpectedEOF for a truncated
// file, wraps ErrCorrupt for a damaged one, or is the underlying I/O error.
type ReadError struct {
	Path string
	// Offset is the start of the record or block that failed. For gzip
	// input it counts bytes of the decompressed stream (Decompressed is
	// set), because that is where the capture structure lives.
	Offset       int64
	Decompressed bool
	Err          error
}

func (e *ReadError) Error() string {
	where := " at byte " + strconv.FormatInt(e.Offset, 10)
	if e.Decompressed {
		where += " of the decompressed stream"
	}
	return "read " + e.Path + where + ": " + e.Err.Error()
}

func (e *ReadError) Unwrap() error { return e.Err }

// offsetError is what the pcap reader and the pcapng framer return: a
// failure at a stream offset, before the file name is known to be attached.
type offsetError struct {
	off int64
	err error
}

func (e *offsetError) Error() string {
	return "at byte " + strconv.FormatInt(e.off, 10) + ": " + e.err.Error()
}

func (e *offsetError) Unwrap() error { return e.err }

// fmtCorrupt describes a structural problem, wrapping ErrCorrupt.
func fmtCorrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// corruptf reports a structural problem at stream offset off.
func corruptf(off int64, format string, args ...any) error {
	return &offsetError{off: off, err: fmtCorrupt(format, args...)}
}
