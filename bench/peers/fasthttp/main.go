// SPDX-License-Identifier: MIT
// Benchmark peer: fasthttp serving TechEmpower's /plaintext and /json with GOMAXPROCS=1,
// so one OS thread runs Go code at a time (bench/run.sh pins the process to a CPU).
//
// Usage: fasthttp-bench [PORT]   (else the PORT environment variable, else 8080)
// Listens on 127.0.0.1. Keep-alive is fasthttp's default; pipelined requests are answered
// in order, the responses of a batch flushed together. fasthttp adds the Server header (its
// Name) and the Date header (formatted once a second); Content-Length follows from the body.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"strconv"

	"github.com/valyala/fasthttp"
)

var plaintext = []byte("Hello, World!")

type message struct {
	Message string `json:"message"`
}

func handle(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		ctx.Error("Method Not Allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	switch string(ctx.Path()) {
	case "/plaintext":
		ctx.SetContentType("text/plain")
		ctx.SetBody(plaintext)
	case "/json":
		// Serialized per request, as TechEmpower's JSON test requires.
		body, err := json.Marshal(message{Message: "Hello, World!"})
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	default:
		ctx.Error("Not Found", fasthttp.StatusNotFound)
	}
}

func port() int {
	s := os.Getenv("PORT")
	if len(os.Args) > 1 {
		s = os.Args[1]
	}
	if s == "" {
		return 8080
	}
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		fmt.Fprintf(os.Stderr, "fasthttp-bench: bad port '%s'\n", s)
		os.Exit(2)
	}
	return p
}

func main() {
	runtime.GOMAXPROCS(1)
	addr := "127.0.0.1:" + strconv.Itoa(port())
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		log.Fatalf("fasthttp-bench: %v", err)
	}
	server := &fasthttp.Server{
		Handler: handle,
		Name:    "fasthttp",
	}
	if err := server.Serve(ln); err != nil {
		log.Fatalf("fasthttp-bench: %v", err)
	}
}
