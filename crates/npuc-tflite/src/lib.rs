//! placeholder until import lands
