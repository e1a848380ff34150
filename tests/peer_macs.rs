//! A cluster whose configs give each peer by name and address only: every
//! node learns its peers' wire MACs from their control channels' frames,
//! and hands off as with configured MACs. Needs root; see
//! `testbed::available`.

mod testbed;

use testbed::{node_ip, Testbed};

#[test]
fn peers_given_by_address_only_have_their_macs_learned_and_get_handoffs() {
    if !testbed::available("peers_given_by_address_only_have_their_macs_learned_and_get_handoffs") {
        return;
    }
    let tb = Testbed::up_cluster_without_peer_macs(3);
    let config = std::fs::read_to_string(tb.config_path(1)).unwrap();
    assert!(
        !config.contains("mac ="),
        "the testbed wrote peer MACs:\n{config}"
    );

    // Each node learned each peer's MAC (node J's is 02:ba:70:00:00:0J).
    for i in 1..=3 {
        for j in (1..=3).filter(|&j| j != i) {
            let line = format!("learned peer n{j}'s MAC 02:ba:70:00:00:{j:02x} from the wire");
            assert!(
                tb.wait_for(5, || tb.log(i).contains(&line)),
                "node {i}: no {line:?}; log:\n{}",
                tb.log(i)
            );
        }
    }

    // Content of nodes 2 and 3 through node 1, of node 1 through node 3:
    // handed off, intact.
    for (via, owner) in [(1, 2), (1, 3), (3, 1)] {
        let file = format!("n{owner}/1m.bin");
        let got = tb.fetch_sha256(&format!("http://{}/{file}", node_ip(via)), 30);
        assert_eq!(
            got.as_deref(),
            Some(tb.sha256_of(owner, &file).as_str()),
            "{file} via node {via}; logs:\n{}\n{}",
            tb.log(via),
            tb.log(owner)
        );
    }
    assert_eq!(tb.counter(1, "handed_off"), 2);
    assert_eq!(tb.counter(3, "handed_off"), 1);
    assert_eq!(tb.counter(2, "handed_in") + tb.counter(3, "handed_in"), 2);
    assert_eq!(tb.counter(1, "handed_in"), 1);
    assert_eq!(tb.counter(1, "fell_back") + tb.counter(3, "fell_back"), 0);
}
