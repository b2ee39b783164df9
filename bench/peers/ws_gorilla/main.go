// SPDX-License-Identifier: MIT
// The gorilla/websocket peer of bench/ws.sh (issue 17): an echo on /echo, the library's
// own documented shape (one goroutine per connection: NextReader, then a writer for the
// same message type). PORT (default 8080); GOMAXPROCS as the environment gives it.
package main

import (
	"io"
	"log"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		kind, rd, err := c.NextReader()
		if err != nil {
			return
		}
		wr, err := c.NextWriter(kind)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/echo", echo)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
