//! The bounds of issue 12 ("Safe by default"): a product's and a deal's price and a deal's stock
//! have maxima, refused with a message naming the field and the maximum, and with them every
//! order total is exact: in Rust (checked) and in the inventory's Lua scripts, where numbers are
//! doubles and integers are exact only below 2^53.

use livehub::error::HubError;
use livehub::inventory::order_total;
use livehub::protocol::{DealSpec, Id, MAX_DEAL_STOCK, MAX_PRICE_CENTS, MAX_TOTAL_CENTS, Product};
use proptest::prelude::*;

fn product(price_cents: u64) -> Product {
    Product {
        id: Id::new("p").unwrap(),
        title: "Kettle".into(),
        price_cents,
        currency: "USD".into(),
        image_url: None,
    }
}

fn deal(price_cents: u64, stock: u32) -> DealSpec {
    DealSpec {
        id: Id::new("d").unwrap(),
        product_id: Id::new("p").unwrap(),
        title: Some("P".into()),
        image_url: None,
        price_cents,
        currency: "USD".into(),
        stock,
        per_user_limit: 1,
        duration_ms: 60_000,
        commission_bps: 0,
        affiliate_bps: 0,
    }
}

/// The message of a `bad_request`, or a panic.
fn refused(r: Result<(), HubError>) -> String {
    match r {
        Err(HubError::BadRequest(m)) => m,
        other => panic!("expected bad_request, got {other:?}"),
    }
}

#[test]
fn prices_over_the_maximum_are_refused_naming_the_field_and_the_maximum() {
    assert_eq!(MAX_PRICE_CENTS, 100_000_000, "documented as 1,000,000.00");
    for price in [MAX_PRICE_CENTS + 1, i64::MAX as u64, u64::MAX] {
        let m = refused(product(price).validate());
        assert!(
            m.contains("product.price_cents") && m.contains("100000000"),
            "{m}"
        );
        let m = refused(deal(price, 10).validate());
        assert!(
            m.contains("deal.price_cents") && m.contains("100000000"),
            "{m}"
        );
    }
    for price in [0, 1, 1999, MAX_PRICE_CENTS] {
        product(price).validate().unwrap();
        deal(price, 10).validate().unwrap();
    }
}

#[test]
fn stock_over_the_maximum_is_refused_naming_the_field_and_the_maximum() {
    for stock in [0, MAX_DEAL_STOCK + 1, u32::MAX] {
        let m = refused(deal(100, stock).validate());
        assert!(m.contains("deal.stock") && m.contains("10000000"), "{m}");
    }
    deal(MAX_PRICE_CENTS, MAX_DEAL_STOCK).validate().unwrap();
}

#[test]
fn the_largest_total_is_exact_as_a_double() {
    assert_eq!(
        u128::from(MAX_TOTAL_CENTS),
        u128::from(MAX_PRICE_CENTS) * u128::from(MAX_DEAL_STOCK)
    );
    const { assert!(MAX_TOTAL_CENTS < 1 << 53) };
    assert_eq!(
        order_total(MAX_PRICE_CENTS, MAX_DEAL_STOCK),
        Some(MAX_TOTAL_CENTS)
    );
    assert_eq!(MAX_TOTAL_CENTS as f64 as u64, MAX_TOTAL_CENTS);
    // Beyond the bounds the product would overflow u64; the checked total says so.
    assert_eq!(order_total(u64::MAX, 2), None);
    assert_eq!(order_total(i64::MAX as u64, u32::MAX), None);
}

proptest! {
    /// Within the bounds, price x qty computed in doubles (as Lua does) is the exact total, and
    /// so is any sum of such totals below 2^53.
    #[test]
    fn totals_within_the_bounds_are_exact_in_doubles(
        price in 0..=MAX_PRICE_CENTS,
        qty in 1..=MAX_DEAL_STOCK,
    ) {
        let exact = order_total(price, qty).unwrap();
        prop_assert!(exact <= MAX_TOTAL_CENTS);
        prop_assert_eq!((price as f64 * f64::from(qty)) as u64, exact);
        prop_assert_eq!(format!("{:.0}", price as f64 * f64::from(qty)), exact.to_string());
    }
}

#[test]
fn rates_over_one_hundred_percent_are_refused_naming_the_field() {
    for bps in [10_001, u32::MAX] {
        let over = |commission_bps, affiliate_bps| DealSpec {
            commission_bps,
            affiliate_bps,
            ..deal(100, 10)
        };
        let m = refused(over(bps, 0).validate());
        assert!(
            m.contains("deal.commission_bps") && m.contains("10000"),
            "{m}"
        );
        let m = refused(over(0, bps).validate());
        assert!(
            m.contains("deal.affiliate_bps") && m.contains("10000"),
            "{m}"
        );
    }
    let rates = |commission_bps, affiliate_bps| DealSpec {
        commission_bps,
        affiliate_bps,
        ..deal(100, 10)
    };
    for (commission, affiliate) in [(0, 0), (1, 1), (5_000, 5_000), (10_000, 0), (0, 10_000)] {
        rates(commission, affiliate).validate().unwrap();
    }
    // Together at most a whole order: an affiliate who is the host is paid both.
    for (commission, affiliate) in [
        (9_999, 9_999),
        (10_000, 10_000),
        (10_000, 1),
        (5_001, 5_000),
    ] {
        let m = refused(rates(commission, affiliate).validate());
        assert!(
            m.contains("deal.commission_bps + deal.affiliate_bps") && m.contains("10000"),
            "{m}"
        );
    }
}
