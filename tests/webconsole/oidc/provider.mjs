// A real OpenID Connect provider for the console's sign-in tests: panva/oidc-provider
// (a certified OpenID provider library), PKCE required, with a minimal login form of its
// own (the library's development form loads web fonts from another host) and consent given
// at once, as a province's SSO does for its own applications.
// Usage: node provider.mjs PORT REDIRECT_URI CLIENT_SECRET
import http from "node:http";
import Provider from "oidc-provider";

const [port, redirectUri, clientSecret] = process.argv.slice(2);

// The identities the tests sign in as: any password is accepted by the dev login form.
const ACCOUNTS = {
  truongphong: {
    name: "Trần Thị Trưởng Phòng",
    email: "truongphong@binhphuoc.gov.vn",
    groups: ["ioc-staff", "ioc-department-heads"],
    ioc_unit: "689",
  },
  khach: { name: "Người ngoài", email: "khach@example.org", groups: ["visitors"] },
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: "ioc-console",
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true },
  scopes: ["openid", "profile", "email", "ioc"],
  claims: { openid: ["sub"], profile: ["name"], email: ["email"], ioc: ["groups", "ioc_unit"] },
  conformIdTokenClaims: false, // the ID token carries the claims (as Keycloak's mappers do)
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, ...(ACCOUNTS[id] || { name: id }) }),
  }),
  cookies: { keys: ["test-only-cookie-key"] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function loginForm(uid) {
  return `<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>SSO</title></head>
<body><main><h1>Đăng nhập SSO của tỉnh</h1>
<form method="post" action="/interaction/${escape(uid)}">
<label for="login">Tên đăng nhập</label><input id="login" name="login" required>
<label for="password">Mật khẩu</label><input id="password" name="password" type="password" required>
<button type="submit">Đăng nhập</button></form></main></body></html>`;
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (prompt.name === "login") {
    if (req.method === "POST") {
      const form = await readForm(req);
      await provider.interactionFinished(req, res, { login: { accountId: form.get("login") } }, {
        mergeWithLastSubmission: false,
      });
      return;
    }
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end(loginForm(uid));
    return;
  }
  // consent: grant what the client asked for
  const grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
}

const callback = provider.callback();
http
  .createServer((req, res) => {
    if (req.url.startsWith("/interaction/")) {
      interaction(req, res).catch((err) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    } else {
      callback(req, res);
    }
  })
  .listen(Number(port), "127.0.0.1", () => console.log("oidc-provider ready"));
