// PII masking on a table of cases, including look-alikes that must not be masked, and the domain
// blocklist.
import assert from "node:assert/strict";
import { test } from "node:test";
import { domainBlocklistStep, findPii, luhn, maskPii, parseDomainList } from "../../src/data/pii.js";

const MASKED: [string, string][] = [
  ["Write to jane.doe+news@example.co.uk today.", "Write to <EMAIL> today."],
  ["Contact: info@sub.example.org.", "Contact: <EMAIL>."],
  ["Call (555) 123-4567 now", "Call <PHONE> now"],
  ["Call 555-123-4567 or 555.987.6543", "Call <PHONE> or <PHONE>"],
  ["Tel +44 20 7946 0958.", "Tel <PHONE>."],
  ["Ring +1-202-555-0143 please", "Ring <PHONE> please"],
  ["Büro: 030 1234 5678", "Büro: <PHONE>"],
  ["server at 192.168.1.20 is down", "server at <IP> is down"],
  ["IPv6 2001:db8:85a3::8a2e:370:7334 works", "IPv6 <IP> works"],
  ["card 4111 1111 1111 1111 exp 12/25", "card <CARD> exp 12/25"],
  ["card 4111-1111-1111-1111.", "card <CARD>."],
  ["amex 378282246310005", "amex <CARD>"],
];

const UNTOUCHED: string[] = [
  "Released on 2023-01-15 and patched on 2024.02.29.",
  "Upgrade to version 1.2.3.4 of the library.", // four parts but read as an IP: see below
  "The population was 1,234,567 in 2020.",
  "Pi is 3.14159265358979.",
  "ISBN 978-3-16-148410-0 is on the cover.",
  "Order number 4111111111111112 failed Luhn.",
  "Price: $1,299.99 (was $1,499.00).",
  "The address 999.168.1.1 is not valid.",
  "Ratio 16:9 at 10:30:45 today.",
  "user@localhost is not a routable address",
  "Chapter 12, verses 3-7, pages 100-120.",
  "Call me at extension 4567.",
  "Coordinates 40.7128, -74.0060.",
];

test("PII: emails, phones, IPs and Luhn-valid cards are masked", () => {
  for (const [input, want] of MASKED) assert.equal(maskPii(input, findPii(input)), want, input);
});

test("PII: dates, versions, prices, ISBNs, Luhn failures and other look-alikes are not masked", () => {
  for (const input of UNTOUCHED) {
    const found = findPii(input).filter((m) => !(input.includes("1.2.3.4") && m.kind === "ip"));
    assert.deepEqual(found, [], input);
  }
  // A dotted quad that is a valid address is an address: "1.2.3.4" is masked as an IP (documented).
  assert.equal(maskPii("v 1.2.3.4", findPii("v 1.2.3.4")), "v <IP>");
});

test("PII: Luhn check, kinds and drop mode", async () => {
  assert.ok(luhn("4111111111111111") && !luhn("4111111111111112") && luhn("79927398713"));
  const onlyEmail = findPii("a@b.com 555-123-4567", ["email"]);
  assert.deepEqual(
    onlyEmail.map((m) => m.kind),
    ["email"],
  );
  const { piiStep } = await import("../../src/data/pii.js");
  const drop = await piiStep.block!(
    { mode: "drop", kinds: ["email", "phone", "ip", "card"], maxCount: 1, masks: {} },
    null as never,
  );
  const d = { id: "1", text: "a@b.com and c@d.org", meta: {} };
  assert.deepEqual(drop.process(d), { drop: "PII" });
  const mask = await piiStep.block!(
    { mode: "mask", kinds: ["email"], maxCount: 0, masks: { email: "[e]" } },
    null as never,
  );
  const r = (await mask.process({ id: "1", text: "mail a@b.com", meta: {} })) as {
    text: string;
    meta: Record<string, unknown>;
  };
  assert.equal(r.text, "mail [e]");
  assert.deepEqual(r.meta.pii_masked, { email: 1 });
});

test("domain blocklist: the domain and its subdomains, not look-alikes", async () => {
  assert.deepEqual(parseDomainList("# adult\nBad.example\n\nwww.worse.test # comment\n"), [
    "bad.example",
    "worse.test",
  ]);
  const b = await domainBlocklistStep.block!(
    { domains: ["bad.example", "worse.test"], domainsFile: "" },
    null as never,
  );
  const at = (url?: string) => b.process({ id: "1", text: "t", meta: {}, ...(url ? { url } : {}) });
  assert.deepEqual(at("https://bad.example/x"), { drop: "blocked domain" });
  assert.deepEqual(at("http://www.cdn.bad.example/x"), { drop: "blocked domain" });
  assert.deepEqual(at("https://worse.test"), { drop: "blocked domain" });
  for (const ok of ["https://notbad.example/", "https://bad.example.com/", undefined])
    assert.ok(!("drop" in (at(ok) as object)), ok);
});
