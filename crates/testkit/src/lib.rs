//! Deterministic fixtures for tests and benchmarks: keys from names, genesis files with N
//! operators, issue records and signed transactions with tracked nonces.

pub mod hostile;
mod ledger;
pub mod process;
pub mod proxy;

use std::collections::BTreeMap;

use cachet_types::{
    Address, ChainParams, CountryCode, CurrencyCode, FaceValue, Genesis, Hash, IssueId,
    IssueRecord, Operator, OperatorId, PublicKey, SignedTx, SigningKey, StampId, TxBody,
};
pub use ledger::{FlakyBackend, TestLedger};

/// The public node identity key of the test operator of `country`.
fn node_key(country: &str) -> PublicKey {
    key(&format!("{country}-node")).public_key()
}

/// The key named `name`: the same on every run.
pub fn key(name: &str) -> SigningKey {
    SigningKey::from_seed(Hash::tagged("cachet/testkit-key", &[name.as_bytes()]).0)
}

/// Country codes of the first test operators, in order; more operators get the codes after
/// them in `country_code`'s sequence.
const COUNTRIES: [&str; 8] = ["AT", "DE", "CH", "FR", "IT", "NL", "BE", "SE"];

/// The country code of test operator `index`: `COUNTRIES` first, then two-letter codes
/// `AA`, `AB`, ... (skipping those already used), enough for `MAX_OPERATORS`.
pub fn country_code(index: usize) -> String {
    if let Some(code) = COUNTRIES.get(index) {
        return (*code).to_string();
    }
    (0..26 * 26)
        .map(|n| {
            let letters = [b'A' + (n / 26) as u8, b'A' + (n % 26) as u8];
            String::from_utf8_lossy(&letters).into_owned()
        })
        .filter(|code| !COUNTRIES.contains(&code.as_str()))
        .nth(index - COUNTRIES.len())
        .unwrap_or_else(|| panic!("no test country code for operator {index}"))
}

/// A test chain: its genesis and the operators' keys.
#[derive(Debug, Clone)]
pub struct TestChain {
    /// The genesis.
    pub genesis: Genesis,
    /// Its chain id.
    pub chain_id: Hash,
    /// Per operator: (validator key, issuer key).
    pub operator_keys: Vec<(SigningKey, SigningKey)>,
}

impl TestChain {
    /// A chain with `operators` operators (up to `MAX_OPERATORS`) named `AT-POST`,
    /// `DE-POST`, ... (see [`country_code`]).
    pub fn new(operators: usize) -> TestChain {
        TestChain::with_params(operators, ChainParams::default())
    }

    /// The node identity key of operator `index` (its seed is the node's libp2p identity).
    pub fn node_key(&self, index: usize) -> SigningKey {
        key(&format!("{}-node", country_code(index).as_str()))
    }

    /// Same, with chosen parameters.
    pub fn with_params(operators: usize, params: ChainParams) -> TestChain {
        let mut list = Vec::new();
        let mut keys = Vec::new();
        for country in (0..operators).map(country_code) {
            let country = country.as_str();
            let validator = key(&format!("{country}-validator"));
            let issuer = key(&format!("{country}-issuer"));
            list.push(Operator {
                id: operator_id(country),
                country: CountryCode::parse(country).unwrap_or_else(|e| panic!("{e}")),
                name: format!("{country} Post"),
                validator_key: validator.public_key(),
                node_key: node_key(country),
                issuer: issuer.public_key().address(),
            });
            keys.push((validator, issuer));
        }
        let genesis = Genesis {
            chain_name: "cachet-test".into(),
            genesis_time_ms: 1_767_225_600_000,
            operators: list,
            params,
        };
        TestChain {
            chain_id: genesis.chain_id(),
            genesis,
            operator_keys: keys,
        }
    }

    /// Operator `index`'s issuer key.
    pub fn issuer(&self, index: usize) -> &SigningKey {
        &self.operator_keys[index].1
    }

    /// Operator `index`'s validator key.
    pub fn validator(&self, index: usize) -> &SigningKey {
        &self.operator_keys[index].0
    }
}

/// `AT` -> `AT-POST`.
pub fn operator_id(country: &str) -> OperatorId {
    OperatorId::parse(&format!("{country}-POST")).unwrap_or_else(|e| panic!("{e}"))
}

/// An issue id from text (panics on invalid input: fixtures only).
pub fn issue_id(text: &str) -> IssueId {
    IssueId::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// A stamp id.
pub fn stamp(issue: &str, serial: u32) -> StampId {
    StampId::new(issue_id(issue), serial)
}

/// A plausible issue record for operator `AT-POST` style ids.
pub fn issue_record(id: &str, operator: &str, print_run: u32) -> IssueRecord {
    IssueRecord {
        id: issue_id(id),
        operator: OperatorId::parse(operator).unwrap_or_else(|e| panic!("{e}")),
        title: "Alpine Flowers".into(),
        country: CountryCode::parse(&operator[..2]).unwrap_or_else(|e| panic!("{e}")),
        year: 2026,
        wns_number: Some("AT001.26".into()),
        face_value: FaceValue {
            amount_minor: 120,
            currency: CurrencyCode::parse("EUR").unwrap_or_else(|e| panic!("{e}")),
        },
        design_sha256: Hash::sha256(id.as_bytes()),
        design_uri: format!("https://stamps.example/{id}.png"),
        print_run,
        variants: Vec::new(),
        co_issuers: Vec::new(),
    }
}

/// Signs transactions, tracking each signer's next nonce.
#[derive(Debug, Clone)]
pub struct TxFactory {
    chain_id: Hash,
    nonces: BTreeMap<PublicKey, u64>,
}

impl TxFactory {
    /// A factory for `chain_id`, with every nonce at 0.
    pub fn new(chain_id: Hash) -> TxFactory {
        TxFactory {
            chain_id,
            nonces: BTreeMap::new(),
        }
    }

    /// Signs `body` with `key` at the signer's next nonce.
    pub fn sign(&mut self, key: &SigningKey, body: TxBody) -> SignedTx {
        let nonce = self.nonces.entry(key.public_key()).or_insert(0);
        *nonce += 1;
        SignedTx::sign(self.chain_id, key, *nonce, body)
    }

    /// Gives back the last nonce handed to `key` (its transaction was refused, so the nonce
    /// is still free).
    pub fn release(&mut self, key: &SigningKey) {
        if let Some(nonce) = self.nonces.get_mut(&key.public_key()) {
            *nonce = nonce.saturating_sub(1);
        }
    }

    /// The next nonce `key` would use.
    pub fn next_nonce(&self, key: &SigningKey) -> u64 {
        self.nonces.get(&key.public_key()).copied().unwrap_or(0) + 1
    }
}

/// The address of the key named `name`.
pub fn address(name: &str) -> Address {
    key(name).public_key().address()
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    #[test]
    fn a_test_chain_of_the_most_operators_is_a_valid_genesis() {
        let chain = TestChain::new(cachet_types::genesis::MAX_OPERATORS);
        assert_eq!(
            chain.genesis.operators.len(),
            cachet_types::genesis::MAX_OPERATORS
        );
        chain.genesis.validate().expect("valid genesis");
        assert_eq!(country_code(0), "AT");
        assert_eq!(country_code(8), "AA");
    }
}
