"""Generated input files: realistic user profiles as NDJSON, deterministic for a seed.

A profile looks like what a shop keeps on a customer (names, contact, locale, plan, purchase
history, consents, tags, an address): about 600 bytes a line. The file is cached under
``bench/.data`` by (count, seed) so repeated runs skip generating it.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

DATA_DIR = Path(__file__).resolve().parent / ".data"

_FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Emma", "Farah", "Gustav", "Hana", "Ivan", "Jade",
          "Kenji", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tomás",
          "Uma", "Victor", "Wen", "Xavier", "Yara", "Zoë"]  # fmt: skip
_LAST = ["Smith", "García", "Müller", "Rossi", "Nguyen", "Kowalski", "Okafor", "Tanaka",
         "Dubois", "Silva", "Johansson", "Hernández", "Novak", "Ivanova", "Chen", "Brown"]  # fmt: skip
_CITIES = [("Berlin", "DE", "de-DE", "Europe/Berlin"), ("Paris", "FR", "fr-FR", "Europe/Paris"),
           ("Austin", "US", "en-US", "America/Chicago"), ("Toronto", "CA", "en-CA", "America/Toronto"),
           ("Osaka", "JP", "ja-JP", "Asia/Tokyo"), ("Madrid", "ES", "es-ES", "Europe/Madrid"),
           ("São Paulo", "BR", "pt-BR", "America/Sao_Paulo"), ("Lagos", "NG", "en-NG", "Africa/Lagos"),
           ("Sydney", "AU", "en-AU", "Australia/Sydney"), ("Seattle", "US", "en-US", "America/Los_Angeles")]  # fmt: skip
_DOMAINS = ["example.com", "example.org", "mail.example.net", "shop.example"]
_PLANS = ["free", "basic", "plus", "premium"]
_CATEGORIES = ["shoes", "outdoor", "kitchen", "books", "toys", "beauty", "garden", "audio",
               "fitness", "travel"]  # fmt: skip
_TAGS = ["vip", "newsletter", "beta", "churn-risk", "wholesale", "referrer", "app-user", "returns"]
_STREETS = ["Main St", "Oak Ave", "Lindenstraße", "Rue de la Paix", "Calle Mayor", "High St"]


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def user(i: int, rng: random.Random) -> dict:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, country, locale, tz = rng.choice(_CITIES)
    signup = datetime(2019, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=rng.randrange(200_000_000)
    )
    last_order = signup + timedelta(seconds=rng.randrange(30_000_000))
    orders = rng.randrange(0, 60)
    return {
        "email": f"{_ascii(first)}.{_ascii(last)}.{i}@{rng.choice(_DOMAINS)}",
        "userId": f"u-{i:09d}",
        "dataFields": {
            "firstName": first,
            "lastName": last,
            "phoneNumber": f"+1555{rng.randrange(10**7):07d}",
            "locale": locale,
            "timeZone": tz,
            "signupDate": signup.strftime("%Y-%m-%d %H:%M:%S +00:00"),
            "plan": rng.choice(_PLANS),
            "orderCount": orders,
            "lifetimeValue": round(orders * rng.uniform(8, 140), 2),
            "lastPurchaseDate": last_order.strftime("%Y-%m-%d %H:%M:%S +00:00"),
            "emailOptIn": rng.random() < 0.8,
            "smsOptIn": rng.random() < 0.3,
            "favoriteCategories": rng.sample(_CATEGORIES, rng.randrange(1, 4)),
            "tags": rng.sample(_TAGS, rng.randrange(0, 3)),
            "loyaltyPoints": rng.randrange(0, 20_000),
            "address": {
                "street": f"{rng.randrange(1, 999)} {rng.choice(_STREETS)}",
                "city": city,
                "postalCode": f"{rng.randrange(10000, 99999)}",
                "country": country,
            },
            "referralCode": f"R{rng.getrandbits(40):010X}",
        },
    }


def users_ndjson(count: int, seed: int = 7) -> Path:
    """The path of a file of ``count`` generated users (made once, then reused)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"users-{count}-s{seed}-v2.ndjson"
    if path.exists():
        return path
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        buffer = []
        for i in range(count):
            buffer.append(orjson.dumps(user(i, rng)))
            if len(buffer) >= 10_000:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")
    tmp.replace(path)
    return path
