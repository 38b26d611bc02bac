// Drives the Canopy console in a real browser (Debian's Chromium, through
// playwright-core), for cmd/canopyd TestConsoleInABrowser: node
// console.test.mjs URL [SCREENSHOT_DIR]. It prints "waiting for a change"
// when it wants the test to write, and "ok" at the end; any failure exits
// 1 with what was wrong. With READ_ONLY_TOKEN set, it signs in with that
// token instead and checks that the console offers no write.
import { chromium } from "playwright-core";

const [url, shots] = process.argv.slice(2);
const fail = (msg) => {
  console.error("console test: " + msg);
  process.exit(1);
};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.setDefaultTimeout(20000);
  page.on("pageerror", (e) => fail("the page threw: " + e.message));
  const shot = async (name) => {
    if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  };
  const has = async (selector, text) => {
    await page.locator(selector, { hasText: text }).first().waitFor().catch(() => fail(`${selector} never showed "${text}"`));
  };

  if (process.env.READ_ONLY_TOKEN) {
    // Without a token the server refuses the page's calls, and says so.
    await page.goto(url);
    await has("#status", "not connected");
    await page.fill("#token", process.env.READ_ONLY_TOKEN);
    await page.click("#signin button");
    await page.waitForSelector("body[data-ready]").catch(() => fail("the console never became ready with the token"));
    await has("#caller", "reader (read, check)");
    await page.goto(url + "#/user/tom");
    await has("#detail h3", "Effective access");
    await has("#detail h3", "Audit trail");
    for (const w of ["#preview-form", "#state-form", "button.remove"]) if (await page.locator(w).count() !== 0) fail("a read-only token was offered " + w);
    await page.goto(url + "#/folder/it1");
    await has("#detail h3", "Locks");
    for (const w of ["#lock-form", "#add-form"]) if (await page.locator(w).count() !== 0) fail("a read-only token was offered " + w);
    console.log("ok");
    process.exit(0);
  }

  // The tree renders, with its counts, its top levels open.
  await page.goto(url);
  await page.waitForSelector("body[data-ready]").catch(() => fail("the console never became ready"));
  await has("#tree .node", "Acme Training");
  await has("#tree .node[data-folder=it1]", "1 user");
  await has("#tree .node[data-folder=acme]", "1 grant");
  // A folder closes and opens again, its children read a page at a time.
  await page.click("#tree button[aria-label='close candidates']");
  if (await page.locator("#tree .node[data-folder=it1]").count() !== 0) fail("candidates did not close");
  await page.click("#tree button[aria-label='open candidates']");
  await has("#tree .node[data-folder=it2]", "1 user");
  await shot("tree");

  // Search finds a user; a click opens the user's page, with the access
  // drawn over the tree.
  await page.fill("#search", "carl");
  await page.click("#tree a[href='#/user/carl']");
  await has("#detail h2", "Carl Candidate");
  await has("#detail a[href='#/folder/it1']", "it1");
  await has("#detail table td", "role-candidate");
  await page.fill("#search", "tom");
  await page.click("#tree a[href='#/user/tom']");
  await has("#detail h2", "Tom Teacher");
  await has("#detail .node.reached[data-folder=it1]", "edit");
  await shot("user");

  // A decision explained as a picture: the chain of an allowed one, the
  // missing grant of a denied one.
  await page.goto(url + "#/explain?user=tom&right=edit&resource=user/carl");
  await has("#verdict", "ALLOWED");
  await has("#explain-chain .box", "grant access-it1-teacher");
  await has("#explain-chain .box", "it1-teacher");
  await shot("explain");
  await page.goto(url + "#/explain?user=tom&right=assign&resource=user/carl");
  await has("#verdict", "DENIED: no grant");
  await has("#explain-chain .box", "grant tom-next-term");
  await has("#pending", "will allow it from");

  // The Aptem case: the inspector's grant previewed before it is given
  // shows exactly the sampled learners, then is given.
  await page.goto(url + "#/user/inspector");
  await has("#detail h3", "Preview a grant");
  await page.fill("#preview-form input[name=grant]", "visit");
  await page.fill("#preview-form input[name=rights]", "view_all_in_group,trainee_assessor");
  await page.fill("#preview-form input[name=target]", "ofsted");
  await page.click("#preview-form button");
  await has("#preview", "1 user would change");
  await has("#preview td", "would see lea, lucy");
  await shot("preview");
  await page.click("#commit-grant");
  await has("#detail td", "add grant visit");

  // A lock added from a folder's page, previewed first, denies what the
  // grants allowed; removed again, previewed too, the grant allows again.
  await page.goto(url + "#/folder/it1");
  await page.fill("#lock-form input[name=lock]", "exam-week");
  await page.fill("#lock-form input[name=reason]", "exams");
  await page.click("#lock-form button");
  await has("#preview", "would change");
  await has("#preview td", "tom");
  await has("#preview td", "would no longer see carl");
  await shot("lock");
  await page.click("#commit-lock");
  await has("#detail td", "add lock exam-week");
  await page.goto(url + "#/explain?user=tom&right=edit&resource=user/carl");
  await has("#verdict", "DENIED: locked");
  await has("#explain-chain .box", "lock exam-week");
  await page.goto(url + "#/folder/it1");
  await page.click("#detail button[data-remove=exam-week]");
  await has("#preview", "would change");
  await page.click("#commit-remove");
  await has("#detail td", "remove lock exam-week");
  await page.goto(url + "#/explain?user=tom&right=edit&resource=user/carl");
  await has("#verdict", "ALLOWED");

  // A user created in a folder, previewed first: the grants on IT1 reach
  // them at once (tom may edit them), and their page opens.
  await page.goto(url + "#/folder/it1");
  await page.selectOption("#add-form select[name=kind]", "user");
  await page.fill("#add-form input[name=id]", "nina");
  await page.fill("#add-form input[name=name]", "Nina Candidate");
  await page.fill("#add-form input[name=class]", "candidate");
  await page.click("#add-form button");
  await has("#preview", "4 users would change");
  await has("#preview tr", "tom");
  await has("#preview td", "edit,read on user/nina");
  await page.click("#commit-add");
  await has("#detail td", "create user nina");
  await page.goto(url + "#/user/nina");
  await has("#detail h2", "Nina Candidate");

  // An account disabled from its page, previewed first.
  await page.goto(url + "#/user/lucy");
  await page.click("#state-form button");
  await has("#preview", "1 user would change");
  await page.click("#commit-state");
  await has("#detail", "Not active");

  // The live change feed: a write made elsewhere arrives, and the audit
  // trail shows who made it.
  console.log("waiting for a change");
  await has("#feed li", "create folder live-folder");
  await page.fill("#search", "");
  await has("#tree .node", "live-folder");
  await page.goto(url + "#/history?object=folder/live-folder");
  await has("#detail td", "create folder live-folder");
  await page.goto(url + "#/history?object=user/inspector");
  await has("#detail td", "add grant visit");
  await shot("history");
  console.log("ok");
} finally {
  await browser.close();
}
