package capture_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"log"

	"github.com/floodguard/floodguard/capture"
	"github.com/floodguard/floodguard/detector"
)

func ExampleNewReplay() {
	// A classic pcap (LINKTYPE_RAW) holding one TCP SYN from 192.0.2.1,
	// read from "standard input".
	file, err := hex.DecodeString("" +
		"d4c3b2a1020004000000000000000000ffff000065000000" + // file header, LINKTYPE_RAW
		"c02e3266000000002800000028000000" + // record: 2024-05-01 12:00:00 UTC, 40 bytes
		"450000280000000040060000" + // IPv4, total length 40, TCP
		"c0000201c6336401" + // 192.0.2.1 > 198.51.100.1
		"9c40005000000000000000005002040000000000") // TCP 40000 > 80, SYN
	if err != nil {
		log.Fatal(err)
	}
	// AdmitAfter 1 counts every source under its address from its first
	// packet; by default, as the XDP program does, a source is counted on
	// its own only from its third packet (sending one or two spoofed
	// packets costs no per-source state).
	r, err := capture.NewReplay([]string{capture.StdinPath}, capture.ReplayOptions{Stdin: bytes.NewReader(file), AdmitAfter: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for {
		tick, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range tick.Sources {
			fmt.Println(tick.Start.Format("2006-01-02 15:04:05"), s.Addr, s.Packets[detector.ClassSYN], "SYN")
		}
	}
	// Output: 2024-05-01 12:00:00 192.0.2.1 1 SYN
}
