// Verifies, in this browser, the open-ledger entries this page shows. No framework, no other origin.
//
// 1. The checkpoint (C2SP signed note) carries a valid Ed25519 signature by the published key
//    (/api/v1/ledger/key: <name>+<hex key id>+<base64(0x01 || public key)>), checked with WebCrypto.
// 2. Each shown entry: its leaf bytes (leaf_b64 from /api/v1/ledger/entries) say what the page
//    shows, and its RFC 6962 inclusion proof leads from SHA-256(0x00 || leaf) to the signed root.
// 3. The signed tree extends the last checkpoint this browser saw (kept in localStorage): an RFC
//    6962 consistency proof, or the same root at the same size.
// The page says 已验证 only when every check ran and passed; 验证失败 names the check and the
// entry; 无法验证 when the browser has no Ed25519 in WebCrypto (or no WebCrypto at all).
(function () {
  "use strict";
  var API = "/api/v1/ledger";
  var STORE = "wxy-ledger-checkpoint:";
  var FIELDS = ["kind", "at", "item", "value_fen", "donor", "wish_id"];
  var status = document.getElementById("verify-status");
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-ledger-entry]"));
  if (!status || !items.length) return;

  function Failure(check, index) { this.check = check; this.index = index; }
  function Unsupported(why) { this.why = why; }

  function say(cls, text) { status.className = "verify " + cls; status.textContent = text; }
  function mark(li, ok, text) {
    var el = li.querySelector("[data-vstate]");
    if (el) { el.className = "vstate " + (ok ? "ok" : "fail"); el.textContent = text; }
  }

  function utf8(text) { return new TextEncoder().encode(text); }
  function fromB64(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function fromHex(text) {
    if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new Failure("证明格式错误");
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
    return out;
  }
  function concat() {
    var total = 0, i, parts = arguments;
    for (i = 0; i < parts.length; i++) total += parts[i].length;
    var out = new Uint8Array(total), at = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], at); at += parts[i].length; }
    return out;
  }
  function same(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
  function leafHash(leaf) { return sha256(concat(Uint8Array.of(0), leaf)); }
  function nodeHash(left, right) { return sha256(concat(Uint8Array.of(1), left, right)); }
  function half(n) { return Math.floor(n / 2); }
  function powerOfTwo(n) { while (n > 1 && n % 2 === 0) n = n / 2; return n === 1; }

  async function getJSON(path) {
    var res = await fetch(path, { credentials: "omit", cache: "no-store" });
    if (!res.ok) throw new Failure("无法读取 " + path + "（HTTP " + res.status + "）");
    return res.json();
  }

  // RFC 9162 2.1.3.2: the root an inclusion proof leads to, or null if the proof is malformed.
  async function inclusionRoot(index, size, leaf, proof) {
    if (!(index >= 0 && index < size)) return null;
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < proof.length; i++) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(proof[i], r);
        while (fn !== 0 && fn % 2 === 0) { fn = half(fn); sn = half(sn); }
      } else {
        r = await nodeHash(r, proof[i]);
      }
      fn = half(fn); sn = half(sn);
    }
    return sn === 0 ? r : null;
  }

  // RFC 9162 2.1.4.2: does the proof show (first, root1) is a prefix of (second, root2)?
  async function consistent(first, second, root1, root2, proof) {
    if (first > second || first < 1) return false;
    if (first === second) return proof.length === 0 && same(root1, root2);
    if (!proof.length) return false;
    var path = proof.slice();
    if (powerOfTwo(first)) path.unshift(root1);
    var fn = first - 1, sn = second - 1;
    while (fn % 2 === 1) { fn = half(fn); sn = half(sn); }
    var fr = path[0], sr = path[0];
    for (var i = 1; i < path.length; i++) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        fr = await nodeHash(path[i], fr); sr = await nodeHash(path[i], sr);
        while (fn !== 0 && fn % 2 === 0) { fn = half(fn); sn = half(sn); }
      } else {
        sr = await nodeHash(sr, path[i]);
      }
      fn = half(fn); sn = half(sn);
    }
    return sn === 0 && same(fr, root1) && same(sr, root2);
  }

  async function publicKey() {
    var key = await getJSON(API + "/key");
    var parts = String(key.vkey).split("+");
    var name = parts[0], kid = parts[1], blob = fromB64(parts.slice(2).join("+"));
    if (parts.length < 3 || !/^[0-9a-f]{8}$/.test(kid) || blob.length !== 33 || blob[0] !== 1) {
      throw new Failure("公钥格式错误");
    }
    var raw = blob.slice(1);
    var id = (await sha256(concat(utf8(name + "\n"), Uint8Array.of(1), raw))).slice(0, 4);
    if (!same(id, fromHex(kid))) throw new Failure("公钥编号与公钥不符");
    var cryptoKey;
    try {
      cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      if (e && e.name === "NotSupportedError") throw new Unsupported("浏览器不支持 Ed25519 签名算法");
      throw new Failure("公钥无法导入");
    }
    return { name: name, id: id, key: cryptoKey };
  }

  async function signedCheckpoint(key) {
    var res = await fetch(API + "/checkpoint", { credentials: "omit", cache: "no-store" });
    if (!res.ok) throw new Failure("无法读取检查点");
    var text = await res.text();
    var cut = text.lastIndexOf("\n\n");
    if (cut < 0 || text.charAt(text.length - 1) !== "\n") throw new Failure("检查点格式错误");
    var body = text.slice(0, cut + 1);
    var lines = text.slice(cut + 2, -1).split("\n");
    var checked = false;
    for (var i = 0; i < lines.length; i++) {
      if (lines[i].indexOf("\u2014 " + key.name + " ") !== 0) continue;
      var raw = fromB64(lines[i].slice(key.name.length + 3));
      if (raw.length !== 68 || !same(raw.slice(0, 4), key.id)) continue;
      var ok = await crypto.subtle.verify({ name: "Ed25519" }, key.key, raw.slice(4), utf8(body));
      if (!ok) throw new Failure("检查点签名无效");
      checked = true;
    }
    if (!checked) throw new Failure("检查点没有该公钥的签名");
    var head = body.slice(0, -1).split("\n");
    if (head.length < 3 || head[0] !== key.name || !/^(0|[1-9][0-9]*)$/.test(head[1])) {
      throw new Failure("检查点格式错误");
    }
    var root = fromB64(head[2]);
    if (root.length !== 32) throw new Failure("检查点根哈希格式错误");
    return { origin: head[0], size: Number(head[1]), root: root };
  }

  function shownMatchesLeaf(li, leaf) {
    var body;
    try { body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(leaf)); } catch (e) { return false; }
    for (var i = 0; i < FIELDS.length; i++) {
      var value = body[FIELDS[i]];
      var shown = li.getAttribute("data-f-" + FIELDS[i].replace(/_/g, "-"));
      if ((value === null || value === undefined ? "" : String(value)) !== shown) return false;
    }
    return true;
  }

  async function checkEntries(cp) {
    var indexes = items.map(function (li) { return Number(li.getAttribute("data-index")); });
    var low = Math.min.apply(null, indexes), high = Math.max.apply(null, indexes);
    var page = await getJSON(API + "/entries?start=" + low + "&limit=" + (high - low + 1));
    var leaves = {};
    page.items.forEach(function (item) { leaves[item.index] = item.leaf_b64; });
    var failures = [];
    for (var i = 0; i < items.length; i++) {
      var li = items[i], index = indexes[i], check = null;
      if (index >= cp.size) {
        check = "签名的检查点不包含这条记录";
      } else if (!leaves.hasOwnProperty(index)) {
        check = "账本中读不到这条记录";
      } else {
        var leaf = fromB64(leaves[index]);
        if (!shownMatchesLeaf(li, leaf)) {
          check = "页面显示的内容与账本记录不符";
        } else {
          var proof = await getJSON(API + "/proof/inclusion?index=" + index + "&tree_size=" + cp.size);
          var root = await inclusionRoot(index, cp.size, await leafHash(leaf), proof.hashes.map(fromHex));
          if (!root || !same(root, cp.root)) check = "包含证明不成立";
        }
      }
      if (check) { failures.push(new Failure(check, index)); mark(li, false, "验证失败"); }
      else mark(li, true, "已验证");
    }
    return failures;
  }

  function remembered(origin) {
    try {
      var saved = JSON.parse(localStorage.getItem(STORE + origin) || "null");
      return saved && { size: Number(saved.size), root: fromB64(saved.root) };
    } catch (e) { return null; }
  }
  function remember(cp) {
    try {
      localStorage.setItem(STORE + cp.origin, JSON.stringify({
        size: cp.size, root: btoa(String.fromCharCode.apply(null, cp.root)) }));
      return true;
    } catch (e) { return false; }
  }

  async function checkConsistency(cp) {
    var last = remembered(cp.origin);
    if (!last) return null;
    if (last.size > cp.size) throw new Failure("一致性：账本比本浏览器上次看到的（" + last.size + " 条）还短");
    if (last.size > 0) {
      var hashes = [];
      if (last.size < cp.size) {
        hashes = (await getJSON(API + "/proof/consistency?first=" + last.size + "&second=" + cp.size)).hashes;
      }
      if (!(await consistent(last.size, cp.size, last.root, cp.root, hashes.map(fromHex)))) {
        throw new Failure("一致性证明不成立：账本与本浏览器上次看到的（" + last.size + " 条）不一致");
      }
    }
    return last.size;
  }

  async function run() {
    if (!window.crypto || !crypto.subtle || !window.TextEncoder) {
      throw new Unsupported("浏览器不支持 WebCrypto（或页面不是通过安全连接打开的）");
    }
    say("", "正在验证…");
    var key = await publicKey();
    var cp = await signedCheckpoint(key);
    var failures = await checkEntries(cp);
    if (failures.length) {
      throw new Failure(failures[0].check + (failures.length > 1 ? "等" : ""),
                        failures.map(function (f) { return f.index; }).join("、"));
    }
    var seen = await checkConsistency(cp);
    remember(cp);
    say("ok", "已验证：检查点（共 " + cp.size + " 条）的 Ed25519 签名有效；本页 " + items.length +
        " 条记录都包含在签名的账本中；" + (seen === null
          ? "这是本浏览器第一次验证，已记下此检查点，下次将检查账本是否只增未改。"
          : "与本浏览器上次看到的账本（" + seen + " 条）一致。"));
  }

  run().catch(function (e) {
    if (e instanceof Unsupported) say("unknown", "无法验证：" + e.why + "。可以用命令行工具验证。");
    else if (e instanceof Failure) say("fail", "验证失败：" + e.check + (e.index !== undefined ? "（第 " + e.index + " 条）" : ""));
    else say("unknown", "无法验证：" + (e && e.message ? e.message : String(e)) + "（网络或浏览器错误，未完成检查）");
  });
})();
