// An account: its nonce, its operator if it is an issuer account, its holdings (paged).

import { api } from "../api";
import { facts, h, hash, table } from "../dom";
import { pager, stamp } from "./common";
import type { Page } from "../main";

export const accountPage: Page = async (main, [address], query) => {
  const after = query.get("after");
  const [info, holdings] = await Promise.all([api.account(address), api.holdings(address, after)]);
  main.replaceChildren(
    h("h1", {}, "Account"),
    facts([
      ["Address", h("code", { class: "address" }, info.address)],
      ["Public key", hash(info.public_key)],
      ["Operator", info.operator ?? h("span", { class: "muted" }, "none (a collector's account)")],
      ["Transactions signed", String(info.nonce)],
    ]),
    h("h2", {}, "Holdings"),
    table(
      after === null ? "Stamps held (first page)" : `Stamps held after ${after}`,
      ["Stamp"],
      holdings.stamps.map((s) => [stamp(s)]),
    ),
    pager(`/account/${address}`, holdings.next, "More stamps", after === null),
  );
};
