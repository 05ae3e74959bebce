// Package capture provides the detector's two sources of per-tick counts,
// behind one type: each returns a *detector.Tick per tick from Next (both
// are a detector.TickSource), so detector.Run, the one decision path, does
// not know which it reads.
//
//   - Live reads the XDP program's maps (per-source and global counters)
//     every tick and turns the kernel's cumulative counts into deltas; the
//     daemon runs it.
//   - Replay reads pcap and pcapng files, gzipped or not, decodes each
//     frame with Decoder (the XDP program's parsing rules, in Go) and cuts
//     the packets into ticks by their timestamps; `floodguard replay` runs
//     it, with SimulatedPlane standing in for the kernel's drop rules.
//
// Open and Reader, the file reading under Replay, can also be used alone.
package capture
