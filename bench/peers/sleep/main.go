// SPDX-License-Identifier: MIT
// Benchmark peer of bench/later.sh: GET /sleep?ms=N answered after N ms (100 without ms),
// the body "Hello, World!", by a handler that calls time.Sleep, with either Go's net/http
// or fasthttp (each connection's goroutine sleeps; the runtime parks it on a timer).
//
// Usage: sleep-bench nethttp|fasthttp PORT   (GOMAXPROCS from the environment)
// Listens on 127.0.0.1.
package main

import (
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

var hello = []byte("Hello, World!")

func wait(ms string) {
	n, err := strconv.Atoi(ms)
	if err != nil || n < 0 {
		n = 100
	}
	time.Sleep(time.Duration(n) * time.Millisecond)
}

func netHTTP(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		wait(r.URL.Query().Get("ms"))
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	return http.Serve(ln, mux)
}

func fastHTTP(ln net.Listener) error {
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) != "/sleep" {
				ctx.Error("Not Found", fasthttp.StatusNotFound)
				return
			}
			wait(string(ctx.QueryArgs().Peek("ms")))
			ctx.SetContentType("text/plain")
			ctx.SetBody(hello)
		},
		Concurrency: 1 << 20, // fasthttp's default (256 * 1024) would refuse beyond it
	}
	return s.Serve(ln)
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: sleep-bench nethttp|fasthttp PORT")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:"+os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	switch os.Args[1] {
	case "nethttp":
		err = netHTTP(ln)
	case "fasthttp":
		err = fastHTTP(ln)
	default:
		log.Fatal("mode: nethttp or fasthttp")
	}
	log.Fatal(err)
}
