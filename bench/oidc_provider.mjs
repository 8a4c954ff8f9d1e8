// The peer of the authz bench: node oidc-provider issuing client-credentials JWT access
// tokens the way the local authorization server does (RS256, 2048-bit key, one API, one
// confidential client with client_secret_post). Started by bench/authz.py on PORT, from
// the folder where the bench installed oidc-provider; never a dependency of the package.
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const audience = "https://organizer.example/api";
const scope = "read:appointments read:contacts";
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256", kid: "bench" };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: "world-mappers",
      client_secret: "world-mappers-dev-secret",
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_post",
      scope,
    },
  ],
  jwks: { keys: [jwk] },
  scopes: scope.split(" "),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience,
        accessTokenTTL: 86400,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
});
provider.listen(port, "127.0.0.1");
