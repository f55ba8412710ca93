// SPDX-License-Identifier: GPL-2.0-or-later
// A Go program on cilium/ebpf, as the eBPF tools of today are written, for the seccomp tests
// (preload/tests/seccomp_test.sh): raw system calls, no libc, so the preload shim cannot reach it.
//
//	pinget PATH            a new array map pinned at PATH (cilium/ebpf checks with statfs that
//	                       the directory is a bpf filesystem), loaded back with LoadPinnedMap,
//	                       written through one handle and read through the other, unpinned;
//	                       prints "pinget: ok id=N" (the kernel id) or what failed, exit 1
//	pinget -keep PATH      the same, without the unpin
//	pinget -gets N PATH    N gets of the map pinned at PATH from 64 goroutines, while a
//	                       goroutine sends the process signals all along (-signals=false: no
//	                       signals but Go's own); prints "pinget: N gets ok" or the first
//	                       failure, exit 1
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
)

func fail(format string, a ...interface{}) {
	fmt.Printf("pinget: "+format+"\n", a...)
	os.Exit(1)
}

func pinAndLoad(path string, keep bool) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		fail("new map: %v", err)
	}
	defer m.Close()
	if err := m.Pin(path); err != nil {
		fail("pin: %v", err)
	}
	loaded, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		fail("load pinned: %v", err)
	}
	defer loaded.Close()
	if err := m.Update(uint32(0), uint32(4242), ebpf.UpdateAny); err != nil {
		fail("update: %v", err)
	}
	var v uint32
	if err := loaded.Lookup(uint32(0), &v); err != nil || v != 4242 {
		fail("lookup through the loaded map: %v (value %d)", err, v)
	}
	a, _ := m.Info()
	b, _ := loaded.Info()
	ida, _ := a.ID()
	idb, _ := b.ID()
	if ida != idb {
		fail("two maps: ids %d and %d", ida, idb)
	}
	if !keep {
		if err := loaded.Unpin(); err != nil {
			fail("unpin: %v", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			fail("still there after the unpin: %v", err)
		}
	}
	fmt.Printf("pinget: ok id=%d\n", ida)
}

func manyGets(n int, path string, signals bool) {
	var done, failed int64
	var first atomic.Value
	stop := make(chan struct{})
	go func() { // signals flying: SIGURG is what Go's own preemption sends
		for signals {
			select {
			case <-stop:
				return
			default:
				syscall.Kill(os.Getpid(), syscall.SIGURG)
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	var wg sync.WaitGroup
	per := n / 64
	for g := 0; g < 64; g++ {
		count := per
		if g == 0 {
			count += n % 64
		}
		wg.Add(1)
		go func(count int) {
			defer wg.Done()
			for i := 0; i < count; i++ {
				m, err := ebpf.LoadPinnedMap(path, nil)
				if err != nil {
					if atomic.AddInt64(&failed, 1) == 1 {
						first.Store(err.Error())
					}
					continue
				}
				m.Close()
				atomic.AddInt64(&done, 1)
			}
		}(count)
	}
	wg.Wait()
	close(stop)
	if failed != 0 {
		fail("%d of %d gets failed, the first: %v", failed, n, first.Load())
	}
	fmt.Printf("pinget: %d gets ok\n", done)
}

func main() {
	keep := flag.Bool("keep", false, "do not unpin")
	gets := flag.Int("gets", 0, "this many gets of an existing pin instead")
	signals := flag.Bool("signals", true, "with -gets: send the process signals all along")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: pinget [-keep] [-gets N] PATH")
	}
	if *gets > 0 {
		manyGets(*gets, flag.Arg(0), *signals)
		return
	}
	pinAndLoad(flag.Arg(0), *keep)
}
