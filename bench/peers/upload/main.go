// SPDX-License-Identifier: MIT
// Benchmark peer of bench/upload.sh: POST /upload reads a multipart/form-data body as it
// arrives with net/http's Request.MultipartReader (no ParseMultipartForm: nothing spooled
// to memory or disk), counts each part's bytes, and answers "<parts> <bytes>", as
// bench/upload_server.c does on chopin.
//
// Usage: upload-bench PORT   (GOMAXPROCS from the environment). Listens on 127.0.0.1.
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

func upload(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	parts, total := 0, int64(0)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n, err := io.Copy(io.Discard, p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		parts++
		total += n
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%d %d", parts, total)
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: upload-bench PORT")
	}
	http.HandleFunc("/upload", upload)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Args[1], nil))
}
