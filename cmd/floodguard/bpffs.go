package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// ensureBPFFS mounts bpffs on the pin directory when neither it nor its
// closest existing parent is on bpffs and we run as root, as bpftool does
// (mkdir, then mount -t bpf bpf DIR): a host that does not mount
// /sys/fs/bpf at boot would otherwise stop the daemon. Without root, or
// when the mount fails (the unit has no CAP_SYS_ADMIN), it does nothing and
// the loader reports the missing bpffs as before.
func ensureBPFFS(dir string, log zerolog.Logger) error {
	p := dir
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if errors.Is(err, unix.ENOENT) && p != "/" {
			p = filepath.Dir(p)
			continue
		}
		if err != nil || st.Type == unix.BPF_FS_MAGIC {
			return nil
		}
		break
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mount bpffs on %s: %w", dir, err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		log.Warn().Str("event", "bpffs").Str("dir", dir).Err(err).Msg("pin directory is not on bpffs and mounting it failed")
		return nil
	}
	log.Info().Str("event", "bpffs").Str("dir", dir).Msg("mounted bpffs on the pin directory (it was not on bpffs)")
	return nil
}
