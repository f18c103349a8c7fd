// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {NoncesKeyed} from "@openzeppelin/contracts/utils/NoncesKeyed.sol";

import {Registrar} from "./Registrar.sol";

/// @title ProviderRegistry
/// @notice The API providers BackendShield pays: one entry per FlowMCP schema namespace, with the
/// eERC account that receives its payouts and its pricing. The owner is the operator.
/// @dev Provider id = keccak256(bytes(namespace)), the namespace exactly as given (1 to 64 ASCII
/// letters or digits; FlowMCP namespaces are letters only). Every change can also be relayed: the
/// `...Signed` variants take an EIP-712 signature by the owner (ERC-1271 for a contract owner), a
/// nonce and a deadline. Nonces run in independent lanes (NoncesKeyed: a 192-bit key above a 64-bit
/// sequence, `nonces(owner(), key)` returns the next one, lane included): a provider's requests use
/// the lane of its id's top 192 bits (`nonceKeyOf(providerId)`), settlement changes lane 0
/// (`SETTLEMENT_NONCE_KEY`, which no namespace's id can take short of a keccak256 preimage with
/// 192 leading zero bits). A signed request for one provider that never lands therefore blocks
/// only that provider's later requests, never another's or a settlement change.
/// Ownership moves in two steps (`transferOwnership`, then `acceptOwnership` by the new owner) and
/// cannot be renounced: an ownerless registry could never change again.
///
/// Pricing, in micro-USDC (1 = 0.000001 USDC):
/// - PerCall: `pricePerCallMicro` (> 0) per billable call.
/// - FreePool: a free provider sharing a revenue pool in proportion to `poolWeight` (> 0).
/// - Tiered: `tiers` (1 to 16) with strictly increasing `upToCalls`; billable calls number
///   (previous upToCalls, upToCalls] of a pricing period cost `priceMicro` each (0 for a free
///   quota). Calls beyond the last tier cost nothing (a cap); an open-ended last tier uses
///   type(uint64).max. The meter prices each call when it records it.
/// Fields the model does not use must be zero (or empty), so each pricing has one encoding.
///
/// Settlement settings: the platform fee (basis points) and the pricing period (UTC month or day)
/// every party settles with, as a history of records. A record applies to every pricing period
/// that starts at or after its `effectiveFrom` (a UTC day start, in the future once a first record
/// exists), so a change never reaches a period already started; the settlement rules off chain
/// (`src/revenue/schedule.ts`) say exactly which period that is.
contract ProviderRegistry is Ownable2Step, EIP712, NoncesKeyed {
    enum PricingModel {
        PerCall,
        FreePool,
        Tiered
    }

    struct Tier {
        uint64 upToCalls;
        uint64 priceMicro;
    }

    struct Pricing {
        PricingModel model;
        uint64 pricePerCallMicro;
        uint32 poolWeight;
        Tier[] tiers;
    }

    struct SettlementRecord {
        uint16 feeBps;
        uint8 periodUnit;
        uint64 effectiveFrom;
    }

    struct Provider {
        string namespace;
        address payoutAccount;
        bool active;
        Pricing pricing;
    }

    uint256 public constant MAX_NAMESPACE_LENGTH = 64;
    uint256 public constant MAX_TIERS = 16;
    uint16 public constant MAX_FEE_BPS = 10_000;
    uint8 public constant PERIOD_UNIT_MONTH = 0;
    uint8 public constant PERIOD_UNIT_DAY = 1;
    uint192 public constant SETTLEMENT_NONCE_KEY = 0;

    bytes32 private constant TIER_TYPEHASH = keccak256("Tier(uint64 upToCalls,uint64 priceMicro)");
    bytes32 private constant PRICING_TYPEHASH = keccak256(
        "Pricing(uint8 model,uint64 pricePerCallMicro,uint32 poolWeight,Tier[] tiers)Tier(uint64 upToCalls,uint64 priceMicro)"
    );
    bytes32 public constant REGISTER_PROVIDER_TYPEHASH = keccak256(
        "RegisterProvider(string namespace,address payoutAccount,Pricing pricing,uint256 nonce,uint256 deadline)"
        "Pricing(uint8 model,uint64 pricePerCallMicro,uint32 poolWeight,Tier[] tiers)Tier(uint64 upToCalls,uint64 priceMicro)"
    );
    bytes32 public constant UPDATE_PRICING_TYPEHASH = keccak256(
        "UpdatePricing(bytes32 providerId,Pricing pricing,uint256 nonce,uint256 deadline)"
        "Pricing(uint8 model,uint64 pricePerCallMicro,uint32 poolWeight,Tier[] tiers)Tier(uint64 upToCalls,uint64 priceMicro)"
    );
    bytes32 public constant SET_PAYOUT_ACCOUNT_TYPEHASH =
        keccak256("SetPayoutAccount(bytes32 providerId,address payoutAccount,uint256 nonce,uint256 deadline)");
    bytes32 public constant SET_ACTIVE_TYPEHASH =
        keccak256("SetActive(bytes32 providerId,bool active,uint256 nonce,uint256 deadline)");
    bytes32 public constant SET_SETTLEMENT_TYPEHASH = keccak256(
        "SetSettlement(uint16 feeBps,uint8 periodUnit,uint64 effectiveFrom,uint256 nonce,uint256 deadline)"
    );

    Registrar public immutable registrar;

    mapping(bytes32 providerId => Provider) private _providers;
    SettlementRecord[] private _settlements;

    event ProviderRegistered(
        bytes32 indexed providerId, string namespace, address indexed payoutAccount, Pricing pricing
    );
    event ProviderPricingUpdated(bytes32 indexed providerId, Pricing pricing);
    event ProviderPayoutAccountChanged(
        bytes32 indexed providerId, address indexed oldPayoutAccount, address indexed newPayoutAccount
    );
    event ProviderActiveChanged(bytes32 indexed providerId, bool active);
    event SettlementChanged(uint16 feeBps, uint8 periodUnit, uint64 effectiveFrom);

    error ZeroAddress();
    error InvalidNamespace(string namespace);
    error ProviderAlreadyRegistered(bytes32 providerId);
    error UnknownProvider(bytes32 providerId);
    error PayoutAccountNotRegistered(address account);
    error ZeroPerCallPrice();
    error ZeroPoolWeight();
    error EmptyTiers();
    error TooManyTiers(uint256 count);
    error TierNotIncreasing(uint256 index);
    error UnusedPricingField();
    error SignatureExpired(uint256 deadline);
    error InvalidSignature();
    error FeeTooHigh(uint16 feeBps);
    error UnknownPeriodUnit(uint8 periodUnit);
    error EffectiveFromNotDayStart(uint64 effectiveFrom);
    error EffectiveFromNotInFuture(uint64 effectiveFrom, uint256 blockTimestamp);
    error EffectiveFromNotAfterPrevious(uint64 effectiveFrom, uint64 previous);
    error UnknownSettlementRecord(uint256 index);
    error RenounceOwnershipDisabled();

    constructor(address registrar_) Ownable(msg.sender) EIP712("BackendShield ProviderRegistry", "1") {
        if (registrar_ == address(0)) revert ZeroAddress();
        registrar = Registrar(registrar_);
    }

    // ---------------------------------------------------------------- owner

    /// @notice Registers the provider of `namespace`, active, paying out to an eERC-registered account.
    function registerProvider(string calldata namespace, address payoutAccount, Pricing calldata pricing)
        external
        onlyOwner
    {
        _register(namespace, payoutAccount, pricing);
    }

    function updatePricing(bytes32 providerId, Pricing calldata pricing) external onlyOwner {
        _updatePricing(providerId, pricing);
    }

    function setPayoutAccount(bytes32 providerId, address payoutAccount) external onlyOwner {
        _setPayoutAccount(providerId, payoutAccount);
    }

    /// @notice An inactive provider earns nothing for later usage; its registration and history stay.
    function setActive(bytes32 providerId, bool active) external onlyOwner {
        _setActive(providerId, active);
    }

    /// @notice Records settlement settings that apply from the first pricing period starting at or
    /// after `effectiveFrom` (Unix seconds, a UTC day start). The first record may take 0: from genesis.
    function setSettlement(uint16 feeBps, uint8 periodUnit, uint64 effectiveFrom) external onlyOwner {
        _setSettlement(feeBps, periodUnit, effectiveFrom);
    }

    // ---------------------------------------------------------------- relayed (owner-signed)

    function registerProviderSigned(
        string calldata namespace,
        address payoutAccount,
        Pricing calldata pricing,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkOwnerSignature(
            abi.encode(
                REGISTER_PROVIDER_TYPEHASH,
                keccak256(bytes(namespace)),
                payoutAccount,
                _hashPricing(pricing),
                _useNonce(owner(), nonceKeyOf(keccak256(bytes(namespace)))),
                deadline
            ),
            deadline,
            signature
        );
        _register(namespace, payoutAccount, pricing);
    }

    function updatePricingSigned(
        bytes32 providerId,
        Pricing calldata pricing,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkOwnerSignature(
            abi.encode(UPDATE_PRICING_TYPEHASH, providerId, _hashPricing(pricing), _useNonce(owner(), nonceKeyOf(providerId)), deadline),
            deadline,
            signature
        );
        _updatePricing(providerId, pricing);
    }

    function setPayoutAccountSigned(
        bytes32 providerId,
        address payoutAccount,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkOwnerSignature(
            abi.encode(SET_PAYOUT_ACCOUNT_TYPEHASH, providerId, payoutAccount, _useNonce(owner(), nonceKeyOf(providerId)), deadline),
            deadline,
            signature
        );
        _setPayoutAccount(providerId, payoutAccount);
    }

    function setActiveSigned(bytes32 providerId, bool active, uint256 deadline, bytes calldata signature)
        external
    {
        _checkOwnerSignature(
            abi.encode(SET_ACTIVE_TYPEHASH, providerId, active, _useNonce(owner(), nonceKeyOf(providerId)), deadline), deadline, signature
        );
        _setActive(providerId, active);
    }

    function setSettlementSigned(
        uint16 feeBps,
        uint8 periodUnit,
        uint64 effectiveFrom,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _checkOwnerSignature(
            abi.encode(SET_SETTLEMENT_TYPEHASH, feeBps, periodUnit, effectiveFrom, _useNonce(owner(), SETTLEMENT_NONCE_KEY), deadline),
            deadline,
            signature
        );
        _setSettlement(feeBps, periodUnit, effectiveFrom);
    }

    /// @notice Always reverts: an ownerless registry could never register, reprice or settle again.
    function renounceOwnership() public pure override {
        revert RenounceOwnershipDisabled();
    }

    // ---------------------------------------------------------------- views

    /// @notice The nonce lane of a provider's signed requests: the top 192 bits of its id.
    function nonceKeyOf(bytes32 providerId) public pure returns (uint192) {
        return uint192(uint256(providerId) >> 64);
    }

    function providerIdOf(string calldata namespace) external pure returns (bytes32) {
        return keccak256(bytes(namespace));
    }

    function isProvider(bytes32 providerId) public view returns (bool) {
        return _providers[providerId].payoutAccount != address(0);
    }

    function getProvider(bytes32 providerId) external view returns (Provider memory) {
        if (!isProvider(providerId)) revert UnknownProvider(providerId);
        return _providers[providerId];
    }

    /// @notice How many settlement records there are; read them with `settlementAt(0 … count − 1)`.
    function settlementCount() external view returns (uint256) {
        return _settlements.length;
    }

    function settlementAt(uint256 index) external view returns (SettlementRecord memory) {
        if (index >= _settlements.length) revert UnknownSettlementRecord(index);
        return _settlements[index];
    }

    // ---------------------------------------------------------------- internals

    function _setSettlement(uint16 feeBps, uint8 periodUnit, uint64 effectiveFrom) private {
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(feeBps);
        if (periodUnit > PERIOD_UNIT_DAY) revert UnknownPeriodUnit(periodUnit);
        if (effectiveFrom % 1 days != 0) revert EffectiveFromNotDayStart(effectiveFrom);
        uint256 n = _settlements.length;
        // Only the first record may start in the past, and then only from genesis.
        if (!(n == 0 && effectiveFrom == 0) && effectiveFrom <= block.timestamp) {
            revert EffectiveFromNotInFuture(effectiveFrom, block.timestamp);
        }
        if (n > 0 && effectiveFrom <= _settlements[n - 1].effectiveFrom) {
            revert EffectiveFromNotAfterPrevious(effectiveFrom, _settlements[n - 1].effectiveFrom);
        }
        _settlements.push(SettlementRecord(feeBps, periodUnit, effectiveFrom));
        emit SettlementChanged(feeBps, periodUnit, effectiveFrom);
    }

    function _register(string calldata namespace, address payoutAccount, Pricing calldata pricing) private {
        _validateNamespace(namespace);
        bytes32 providerId = keccak256(bytes(namespace));
        if (isProvider(providerId)) revert ProviderAlreadyRegistered(providerId);
        _validatePayoutAccount(payoutAccount);
        _validatePricing(pricing);

        Provider storage p = _providers[providerId];
        p.namespace = namespace;
        p.payoutAccount = payoutAccount;
        p.active = true;
        _storePricing(p.pricing, pricing);
        emit ProviderRegistered(providerId, namespace, payoutAccount, pricing);
    }

    function _updatePricing(bytes32 providerId, Pricing calldata pricing) private {
        Provider storage p = _existing(providerId);
        _validatePricing(pricing);
        _storePricing(p.pricing, pricing);
        emit ProviderPricingUpdated(providerId, pricing);
    }

    function _setPayoutAccount(bytes32 providerId, address payoutAccount) private {
        Provider storage p = _existing(providerId);
        _validatePayoutAccount(payoutAccount);
        address old = p.payoutAccount;
        p.payoutAccount = payoutAccount;
        emit ProviderPayoutAccountChanged(providerId, old, payoutAccount);
    }

    function _setActive(bytes32 providerId, bool active) private {
        _existing(providerId).active = active;
        emit ProviderActiveChanged(providerId, active);
    }

    function _existing(bytes32 providerId) private view returns (Provider storage p) {
        p = _providers[providerId];
        if (p.payoutAccount == address(0)) revert UnknownProvider(providerId);
    }

    function _validateNamespace(string calldata namespace) private pure {
        bytes calldata b = bytes(namespace);
        if (b.length == 0 || b.length > MAX_NAMESPACE_LENGTH) revert InvalidNamespace(namespace);
        for (uint256 i = 0; i < b.length; ++i) {
            bytes1 c = b[i];
            bool ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9");
            if (!ok) revert InvalidNamespace(namespace);
        }
    }

    function _validatePayoutAccount(address account) private view {
        if (account == address(0)) revert ZeroAddress();
        if (!registrar.isUserRegistered(account)) revert PayoutAccountNotRegistered(account);
    }

    function _validatePricing(Pricing calldata pricing) private pure {
        if (pricing.model == PricingModel.PerCall) {
            if (pricing.pricePerCallMicro == 0) revert ZeroPerCallPrice();
            if (pricing.poolWeight != 0 || pricing.tiers.length != 0) revert UnusedPricingField();
        } else if (pricing.model == PricingModel.FreePool) {
            if (pricing.poolWeight == 0) revert ZeroPoolWeight();
            if (pricing.pricePerCallMicro != 0 || pricing.tiers.length != 0) revert UnusedPricingField();
        } else {
            uint256 n = pricing.tiers.length;
            if (n == 0) revert EmptyTiers();
            if (n > MAX_TIERS) revert TooManyTiers(n);
            if (pricing.pricePerCallMicro != 0 || pricing.poolWeight != 0) revert UnusedPricingField();
            uint64 previous = 0;
            for (uint256 i = 0; i < n; ++i) {
                uint64 upTo = pricing.tiers[i].upToCalls;
                if (upTo <= previous) revert TierNotIncreasing(i);
                previous = upTo;
            }
        }
    }

    function _storePricing(Pricing storage stored, Pricing calldata pricing) private {
        stored.model = pricing.model;
        stored.pricePerCallMicro = pricing.pricePerCallMicro;
        stored.poolWeight = pricing.poolWeight;
        delete stored.tiers;
        for (uint256 i = 0; i < pricing.tiers.length; ++i) {
            stored.tiers.push(Tier(pricing.tiers[i].upToCalls, pricing.tiers[i].priceMicro));
        }
    }

    function _hashPricing(Pricing calldata pricing) private pure returns (bytes32) {
        bytes32[] memory tierHashes = new bytes32[](pricing.tiers.length);
        for (uint256 i = 0; i < tierHashes.length; ++i) {
            tierHashes[i] = keccak256(abi.encode(TIER_TYPEHASH, pricing.tiers[i].upToCalls, pricing.tiers[i].priceMicro));
        }
        return keccak256(
            abi.encode(
                PRICING_TYPEHASH,
                uint8(pricing.model),
                pricing.pricePerCallMicro,
                pricing.poolWeight,
                keccak256(abi.encodePacked(tierHashes))
            )
        );
    }

    /// @dev The nonce is consumed while encoding `structData`; a failed check reverts it with the call.
    function _checkOwnerSignature(bytes memory structData, uint256 deadline, bytes calldata signature)
        private
        view
    {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        bytes32 digest = _hashTypedDataV4(keccak256(structData));
        if (!SignatureChecker.isValidSignatureNow(owner(), digest, signature)) revert InvalidSignature();
    }
}
