#!/usr/bin/env python3
# Quick RPC throughput check against any node on 127.0.0.1:PORT (verinfer, anvil, hardhat):
# eth_sendTransaction with automine from the first dev account (explicit gas), then eth_getBalance
# and eth_call, N calls each over one keep-alive HTTP connection. Usage: quick-rpc-bench.py PORT N
import http.client, json, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
def rpc(method, params):
    c.request("POST", "/", json.dumps({"jsonrpc":"2.0","id":1,"method":method,"params":params}), {"Content-Type":"application/json"})
    r = json.loads(c.getresponse().read())
    if "error" in r: raise Exception(r["error"])
    return r["result"]
acct = rpc("eth_accounts", [])[0]
bob = "0x000000000000000000000000000000000000b0b0"
t = time.perf_counter()
for i in range(n):
    rpc("eth_sendTransaction", [{"from": acct, "to": bob, "value": "0x1", "gas": "0x5208"}])
dt = time.perf_counter() - t
print(f"sendTransaction+automine: {n/dt:.0f} tx/s")
t = time.perf_counter()
for i in range(n):
    rpc("eth_getBalance", [bob, "latest"])
dt = time.perf_counter() - t
print(f"getBalance: {n/dt:.0f} /s")
t = time.perf_counter()
for i in range(n):
    rpc("eth_call", [{"to": bob, "data": "0x"}, "latest"])
dt = time.perf_counter() - t
print(f"eth_call: {n/dt:.0f} /s")
