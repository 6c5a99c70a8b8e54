import socket, sys, threading, os, struct
# Records one ovs-ofctl <-> switch session per connection (see capture_of10.sh).
listen, target, out = sys.argv[1], sys.argv[2], sys.argv[3]
try: os.unlink(listen)
except FileNotFoundError: pass
ls = socket.socket(socket.AF_UNIX); ls.bind(listen); ls.listen(8)
lock = threading.Lock()
cn = [0]
def pump(a, b, tag, n):
    buf = b''
    while True:
        d = a.recv(65536)
        if not d:
            try: b.shutdown(socket.SHUT_WR)
            except OSError: pass
            return
        b.sendall(d); buf += d
        while len(buf) >= 8:
            l = struct.unpack('!H', buf[2:4])[0]
            if l < 8 or len(buf) < l: break
            with lock:
                with open(out, 'a') as f: f.write('%d %s %s\n' % (n, tag, buf[:l].hex()))
            buf = buf[l:]
while True:
    c, _ = ls.accept(); cn[0] += 1
    s = socket.socket(socket.AF_UNIX); s.connect(target)
    threading.Thread(target=pump, args=(c, s, 'C>S', cn[0]), daemon=True).start()
    threading.Thread(target=pump, args=(s, c, 'S>C', cn[0]), daemon=True).start()
