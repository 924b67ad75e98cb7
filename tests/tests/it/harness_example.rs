//! The README's contract test harness example, verbatim: it must keep compiling and passing.

use alloy::primitives::U256;
use alloy::sol;
use verinfer_tests::harness::Devnet;

sol! {
    #[sol(rpc)]
    interface CreditLending {
        function assess(address borrower, int256[] features) external returns (uint256 factorBps);
        function borrow(uint256 amount) external;
    }
}

#[tokio::test]
async fn scores_a_borrower() -> anyhow::Result<()> {
    let devnet = Devnet::start().await?; // node + compiled contracts
    let model = devnet.add_model("models/credit.onnx").await?; // verinfer_uploadModel
    let pool = devnet
        .deploy_with_value("CreditLending", (model,), U256::from(10u64.pow(18)))
        .await?;
    let pool = CreditLending::new(pool, devnet.provider()); // signs as dev account 0
    let alice = devnet.key(1).address();
    let features = [12000, 20, 1000, 0].map(|v| alloy::primitives::I256::try_from(v).unwrap());
    pool.assess(alice, features.to_vec())
        .send()
        .await?
        .get_receipt()
        .await?;

    // Errors by name: `devnet.decode_error(&revert_data)` knows IInference's and every
    // contract's errors (the library's included).
    let err = pool.borrow(U256::ONE).call().await.err().expect("reverts");
    let name = devnet
        .decode_error(&err.as_revert_data().unwrap())
        .unwrap()
        .name;
    assert_eq!(name, "NotAssessed");
    Ok(())
}
